/** Card types after CDS Hooks 2.0 §Card Attributes (https://cds-hooks.hl7.org/2.0/#card-attributes). */

export type Indicator = 'info' | 'warning' | 'critical';

export interface Coding {
  readonly system?: string;
  readonly code: string;
  readonly display?: string;
}

export interface Action {
  readonly type: 'create' | 'update' | 'delete';
  readonly description: string;
  readonly resource?: Record<string, unknown>;
  readonly resourceId?: string;
}

export interface Suggestion {
  readonly label: string;
  readonly uuid: string;
  readonly isRecommended?: boolean;
  readonly actions: readonly Action[];
}

export interface Link {
  readonly label: string;
  readonly url: string;
  readonly type: 'absolute' | 'smart';
  readonly appContext?: string;
}

export interface OverrideReason extends Coding {}

export interface Card {
  readonly uuid: string;
  readonly summary: string;
  readonly detail?: string;
  readonly indicator: Indicator;
  readonly source: { readonly label: string; readonly url?: string; readonly topic?: Coding };
  readonly suggestions?: readonly Suggestion[];
  readonly selectionBehavior?: 'at-most-one' | 'any';
  readonly overrideReasons?: readonly OverrideReason[];
  readonly links?: readonly Link[];
}

/** The kinds of card the service issues; also the name their uuid is derived from. */
export type CardKind = 'workup' | 'treatment' | 'prognosis';
