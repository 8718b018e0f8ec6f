import { randomBytes } from 'node:crypto';
import type { Link } from '../cards/card.js';
import type { CardKind } from '../cards/card.js';
import { createSignedTokenCodec, type SignedTokenCodec } from '../auth/signed-token.js';
import type { CohortCriteria } from '../cohort/types.js';
import type { ExplanationSubject } from '../hooks/answer-hook.js';

/** What an explanation link carries: the cohort's definition, never the patient (no id, no exact age). */
export interface ExplanationPayload {
  readonly serviceId: string;
  readonly kind: CardKind;
  readonly rulesVersion: number;
  readonly criteria: CohortCriteria;
  readonly relaxation: readonly string[];
}

export interface ExplanationLinks {
  readonly codec: SignedTokenCodec<ExplanationPayload>;
  /** The link a card carries; absolute, so the EHR can open it outside this service's origin. */
  link(subject: ExplanationSubject): Link;
  /** True when the secret is random for this process: links stop opening after a restart. */
  readonly ephemeralSecret: boolean;
}

export function createExplanationLinks(options: {
  readonly secret: string | undefined;
  readonly baseUrl: string;
  readonly ttlMs: number;
  readonly now: () => Date;
}): ExplanationLinks {
  const secret = options.secret ?? randomBytes(32).toString('hex');
  const codec = createSignedTokenCodec<ExplanationPayload>(secret, 'explanation-link');
  const base = options.baseUrl.replace(/\/+$/, '');
  return {
    codec,
    ephemeralSecret: options.secret === undefined,
    link(subject) {
      const token = codec.sign(
        {
          serviceId: subject.serviceId,
          kind: subject.kind,
          rulesVersion: subject.rulesVersion,
          criteria: subject.plan.criteria,
          relaxation: subject.plan.relaxation,
        },
        new Date(options.now().getTime() + options.ttlMs),
      );
      return { label: 'How this cohort was chosen', url: `${base}/explain/${token}`, type: 'absolute' };
    },
  };
}
