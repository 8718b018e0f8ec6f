import { randomBytes } from 'node:crypto';
import type { Link } from '../cards/card.js';
import type { CardKind } from '../cards/card.js';
import { createSignedTokenCodec, type SignedTokenCodec } from '../auth/signed-token.js';
import type { CohortPlan } from '../cohort/matching.js';
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

/**
 * How long a signed link is handed out again: every card carries one, and signing (JSON, base64, HMAC) was 5% of a
 * hook's CPU. A link handed out is therefore valid for the TTL less up to this much, never longer.
 */
export const explanationLinkReuseMs = 60_000;
/** Links remembered for reuse (a few hundred bytes each); the oldest go first. */
export const maximumRememberedLinks = 4096;

/** A plan as JSON, once per plan object (the cards of one call share it; a plan is never changed). */
const planTexts = new WeakMap<CohortPlan, string>();
function planText(plan: CohortPlan): string {
  let text = planTexts.get(plan);
  if (text === undefined) planTexts.set(plan, (text = JSON.stringify([plan.criteria, plan.relaxation])));
  return text;
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
  // Service, kind, rules version and plan → the link made for them and until when it may be handed out.
  const remembered = new Map<string, { readonly link: Link; readonly reuseUntil: number }>();
  return {
    codec,
    ephemeralSecret: options.secret === undefined,
    link(subject) {
      const key = `${subject.serviceId}\u0000${subject.kind}\u0000${subject.rulesVersion}\u0000${planText(subject.plan)}`;
      const now = options.now().getTime();
      const known = remembered.get(key);
      // Within its window; a clock that went back would otherwise hand out a link that outlives the TTL.
      if (known !== undefined && now < known.reuseUntil && now >= known.reuseUntil - explanationLinkReuseMs) return known.link;
      const payload: ExplanationPayload = {
        serviceId: subject.serviceId,
        kind: subject.kind,
        rulesVersion: subject.rulesVersion,
        criteria: subject.plan.criteria,
        relaxation: subject.plan.relaxation,
      };
      const token = codec.sign(payload, new Date(now + options.ttlMs));
      const link: Link = { label: 'How this cohort was chosen', url: `${base}/explain/${token}`, type: 'absolute' };
      remembered.delete(key);
      remembered.set(key, { link, reuseUntil: now + explanationLinkReuseMs });
      if (remembered.size > maximumRememberedLinks) remembered.delete(remembered.keys().next().value!);
      return link;
    },
  };
}
