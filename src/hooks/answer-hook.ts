import type { CardKind, Link } from '../cards/card.js';
import type { CohortCardCache } from '../cards/card-cache.js';
import { buildCohortCards, type BuiltCard, type CardContext } from '../cards/cohort-cards.js';
import { cardUuidFactory } from '../cards/uuid.js';
import { selectCohort, type CohortOutcome, type CohortPlan } from '../cohort/matching.js';
import type { VersionedRules } from '../cohort/rules.js';
import type { CohortSource, PatientFacts } from '../cohort/types.js';
import { patientFactsFromContext } from '../fhir/patient-facts.js';
import type { HookRequest, HookResponse } from './cds-hooks.schema.js';
import { resolveHookContext, type ResolveContextOptions } from './context-resolver.js';
import type { ReferenceData, ReferenceDataCache } from './reference-data.js';
import type { ServiceDefinition } from './service-registry.js';
import type { IssuedCard } from '../db/feedback.repository.js';

/** Answers one validated hook request of one service. */
export type HookAnswerer = (service: ServiceDefinition, request: HookRequest) => Promise<HookResponse>;

/** What a hook call left behind, for the caller to log or audit (no patient identifiers). */
export interface HookTrace {
  readonly serviceId: string;
  readonly hook: string;
  readonly rulesVersion: number;
  readonly cohortSize: number | null;
  readonly relaxation: readonly string[];
  readonly cards: number;
  readonly unavailable: readonly string[];
  readonly latencyMs: number;
}

/** What the explanation page of one card needs: no patient, only the cohort's definition. */
export interface ExplanationSubject {
  readonly serviceId: string;
  readonly kind: CardKind;
  readonly rulesVersion: number;
  readonly plan: CohortPlan;
}

export interface HookDependencies {
  readonly referenceData: ReferenceDataCache;
  readonly cohortSource: CohortSource;
  readonly resolveOptions: ResolveContextOptions;
  readonly recordIssuedCards: (cards: readonly IssuedCard[]) => Promise<void>;
  readonly now: () => Date;
  readonly explanationLink?: (subject: ExplanationSubject) => Link | undefined;
  readonly onTrace?: (trace: HookTrace) => void;
  /** Key of the noise on displayed counts (rules `countNoise`); see countNoiseKeyFromSecret in cards/count-noise.ts. */
  readonly countNoiseKey?: string;
  /** Card templates shared by the calls of one cohort; without it every call builds its cards afresh (same cards). */
  readonly cardCache?: CohortCardCache;
}

/** The cohort and cards for one patient's facts under one rules version: the core shared by hooks and previews. */
export interface FactsAnswer {
  readonly outcome: CohortOutcome;
  readonly built: readonly BuiltCard[];
}

export async function answerForFacts(input: {
  readonly facts: PatientFacts;
  readonly versionedRules: VersionedRules;
  readonly reference: Pick<ReferenceData, 'baseline' | 'conceptDisplays' | 'acceptance'>;
  readonly cohortSource: CohortSource;
  readonly serviceId: string;
  readonly hookInstance: string;
  readonly patientId: string;
  readonly encounterId: string | undefined;
  readonly explanationLink?: (subject: ExplanationSubject) => Link | undefined;
  readonly countNoiseKey?: string;
  readonly cardCache?: CohortCardCache;
}): Promise<FactsAnswer> {
  const { version, rules } = input.versionedRules;
  const outcome = await selectCohort(input.cohortSource, input.facts, rules);
  if (outcome.kind === 'none') return { outcome, built: [] };
  const plan = outcome.selection.plan;
  const context: CardContext = {
    facts: input.facts,
    selection: outcome.selection,
    baseline: input.reference.baseline,
    rules,
    rulesVersion: version,
    patientId: input.patientId,
    encounterId: input.encounterId,
    uuidFor: cardUuidFactory(input.serviceId, input.hookInstance, version),
    conceptDisplay: (concept) => input.reference.conceptDisplays.get(concept) ?? concept,
    explanationLink: (kind) => input.explanationLink?.({ serviceId: input.serviceId, kind, rulesVersion: version, plan }),
    ...(input.countNoiseKey === undefined ? {} : { countNoiseKey: input.countNoiseKey }),
    ...(input.reference.acceptance === undefined ? {} : { acceptance: input.reference.acceptance }),
  };
  const built = input.cardCache ? input.cardCache.build(context) : buildCohortCards(context);
  return { outcome, built };
}

/**
 * The hook pipeline: FHIR context (prefetch or fetch) → patient facts → cohort under the active rules →
 * cards, remembered so that feedback can be matched to them.
 */
export function createHookAnswerer(dependencies: HookDependencies): HookAnswerer {
  return async (service, request) => {
    const started = performance.now();
    const reference = await dependencies.referenceData.get();
    const resolved = await resolveHookContext(service, request, dependencies.resolveOptions);
    const facts: PatientFacts = patientFactsFromContext(resolved, {
      vocabulary: reference.vocabulary,
      icd9Map: reference.icd9Map,
      now: dependencies.now(),
    });
    // The baseline from the cohort source, not the reference data: it follows an ingest or an opt-out (this
    // instance's or another's) as soon as the cohort statistics do, instead of after the reference TTL.
    const baseline = await dependencies.cohortSource.describeBaseline();
    const { outcome, built } = await answerForFacts({
      facts,
      versionedRules: reference.rules,
      reference: { ...reference, baseline },
      cohortSource: dependencies.cohortSource,
      serviceId: service.id,
      hookInstance: request.hookInstance,
      patientId: request.context.patientId,
      encounterId: 'encounterId' in request.context ? request.context.encounterId : undefined,
      ...(dependencies.explanationLink ? { explanationLink: dependencies.explanationLink } : {}),
      ...(dependencies.countNoiseKey === undefined ? {} : { countNoiseKey: dependencies.countNoiseKey }),
      ...(dependencies.cardCache ? { cardCache: dependencies.cardCache } : {}),
    });
    const version = reference.rules.version;
    const complaintConcept = outcome.kind === 'selected' ? outcome.selection.plan.criteria.complaintConcept : null;
    await dependencies.recordIssuedCards(
      built.map(({ kind, card, suggestedItemCodes, suggestedItemDisplays }) => ({
        cardUuid: card.uuid,
        serviceId: service.id,
        hookInstance: request.hookInstance,
        cardKind: kind,
        rulesVersion: version,
        suggestionUuids: (card.suggestions ?? []).map((suggestion) => suggestion.uuid),
        itemCodes: suggestedItemCodes,
        itemDisplays: suggestedItemDisplays,
        complaintConcept,
        overrideReasons: card.overrideReasons ?? [],
      })),
    );
    const cards = built.map(({ card }) => card);
    dependencies.onTrace?.({
      serviceId: service.id,
      hook: service.hook,
      rulesVersion: version,
      unavailable: resolved.unavailable,
      cohortSize: outcome.kind === 'selected' ? outcome.selection.statistics.size : (outcome.sizesTried.at(-1) ?? null),
      relaxation: outcome.kind === 'selected' ? outcome.selection.plan.relaxation : [],
      cards: cards.length,
      latencyMs: performance.now() - started,
    });
    return { cards } as HookResponse;
  };
}
