import type { CardKind, Link } from '../cards/card.js';
import { buildCohortCards } from '../cards/cohort-cards.js';
import { cardUuidFactory } from '../cards/uuid.js';
import { selectCohort, type CohortOutcome } from '../cohort/matching.js';
import type { CohortSource, PatientFacts } from '../cohort/types.js';
import { patientFactsFromContext } from '../fhir/patient-facts.js';
import type { HookRequest, HookResponse } from './cds-hooks.schema.js';
import { resolveHookContext, type ResolveContextOptions } from './context-resolver.js';
import type { ReferenceDataCache } from './reference-data.js';
import type { ServiceDefinition } from './service-registry.js';
import type { IssuedCard } from '../db/feedback.repository.js';

/** Answers one validated hook request of one service. */
export type HookAnswerer = (service: ServiceDefinition, request: HookRequest) => Promise<HookResponse>;

/** What a hook call left behind, for the caller to log or audit (no patient identifiers). */
export interface HookTrace {
  readonly serviceId: string;
  readonly rulesVersion: number;
  readonly cohortSize: number | null;
  readonly relaxation: readonly string[];
  readonly cards: number;
  readonly unavailable: readonly string[];
}

export interface HookDependencies {
  readonly referenceData: ReferenceDataCache;
  readonly cohortSource: CohortSource;
  readonly resolveOptions: ResolveContextOptions;
  readonly recordIssuedCards: (cards: readonly IssuedCard[]) => Promise<void>;
  readonly now: () => Date;
  readonly explanationLink?: (serviceId: string, kind: CardKind) => Link | undefined;
  readonly onTrace?: (trace: HookTrace) => void;
}

/**
 * The hook pipeline: FHIR context (prefetch or fetch) → patient facts → cohort under the active rules →
 * cards, remembered so that feedback can be matched to them.
 */
export function createHookAnswerer(dependencies: HookDependencies): HookAnswerer {
  return async (service, request) => {
    const reference = await dependencies.referenceData.get();
    const resolved = await resolveHookContext(service, request, dependencies.resolveOptions);
    const facts: PatientFacts = patientFactsFromContext(resolved, {
      vocabulary: reference.vocabulary,
      icd9Map: reference.icd9Map,
      now: dependencies.now(),
    });
    const { version, rules } = reference.rules;
    const outcome: CohortOutcome = await selectCohort(dependencies.cohortSource, facts, rules);
    const trace = {
      serviceId: service.id,
      rulesVersion: version,
      unavailable: resolved.unavailable,
    };
    if (outcome.kind === 'none') {
      dependencies.onTrace?.({ ...trace, cohortSize: outcome.sizesTried.at(-1) ?? null, relaxation: [], cards: 0 });
      return { cards: [] };
    }
    const uuidFor = cardUuidFactory(service.id, request.hookInstance, version);
    const built = buildCohortCards({
      facts,
      selection: outcome.selection,
      baseline: reference.baseline,
      rules,
      rulesVersion: version,
      patientId: request.context.patientId,
      encounterId: 'encounterId' in request.context ? request.context.encounterId : undefined,
      uuidFor,
      conceptDisplay: (concept) => reference.conceptDisplays.get(concept) ?? concept,
      explanationLink: (kind) => dependencies.explanationLink?.(service.id, kind),
    });
    await dependencies.recordIssuedCards(
      built.map(({ kind, card, suggestedItemCodes }) => ({
        cardUuid: card.uuid,
        serviceId: service.id,
        hookInstance: request.hookInstance,
        cardKind: kind,
        rulesVersion: version,
        suggestionUuids: (card.suggestions ?? []).map((suggestion) => suggestion.uuid),
        itemCodes: suggestedItemCodes,
      })),
    );
    const cards = built.map(({ card }) => card);
    dependencies.onTrace?.({
      ...trace,
      cohortSize: outcome.selection.statistics.size,
      relaxation: outcome.selection.plan.relaxation,
      cards: cards.length,
    });
    return { cards } as HookResponse;
  };
}
