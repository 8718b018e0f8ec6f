// @ts-check
/**
 * What the rules editor says about each field: a label a clinician reads, a line of help and its group. The
 * field's type, bounds, choices and default come from the server's schema (/console/api/rules-schema), so a
 * field added to the rules later still gets an input (under "Other") before it gets words here.
 */

/** @typedef {{ label: string, help: string, group: string, unit?: 'years' | 'share' | 'visits' | 'items' }} FieldText */

/** @type {Record<string, FieldText>} */
export const fieldTexts = {
  ageWindowYears: { label: 'Age window', help: 'Prior visits within ± this many years of the patient’s age.', group: 'Matching', unit: 'years' },
  widenedAgeWindowYears: { label: 'Widened age window', help: 'The window once the “age band widened” step applies; at least the age window.', group: 'Matching', unit: 'years' },
  matchSex: { label: 'Match sex', help: 'Only prior visits of the same administrative sex.', group: 'Matching' },
  acuityMatch: { label: 'Triage acuity (ESI)', help: 'When the EHR sends an acuity: ignore it, the same level, or one level either side.', group: 'Matching' },
  complaintMatch: { label: 'Chief complaint', help: 'The patient’s primary complaint concept, or any of their complaint concepts.', group: 'Matching' },
  icd10Level: { label: 'ICD-10 level', help: 'Match diagnoses on the full code or on the 3-character category.', group: 'Matching' },
  icd10Overlap: { label: 'ICD-10 overlap', help: 'At least one in common, all of the patient’s, or a Jaccard index.', group: 'Matching' },
  icd10MinJaccard: { label: 'Least Jaccard index', help: 'With the Jaccard overlap: shared ÷ all codes of both visits (0–1).', group: 'Matching', unit: 'share' },
  lookbackYears: { label: 'Look-back', help: 'Only visits of the last N calendar years on record; empty for no limit.', group: 'Matching', unit: 'years' },
  sites: { label: 'Sites', help: 'Only visits from these sites, separated by commas; empty for every site.', group: 'Matching' },
  relaxationOrder: { label: 'Relaxation order', help: 'When fewer than the minimum cohort size match, these steps apply in this order, each on top of the ones before.', group: 'Relaxation' },
  minCohortSize: { label: 'Minimum cohort size', help: 'No card for a smaller cohort (CMS cell-size rule: 11).', group: 'Privacy', unit: 'visits' },
  minCellSize: { label: 'Minimum cell size', help: 'Counts below this are not shown (“fewer than N”); at most the minimum cohort size.', group: 'Privacy', unit: 'visits' },
  countNoise: {
    label: 'Count noise',
    help: 'Noise on the counts a card shows (i2b2-style): {"kind":"none"}, or {"kind":"gaussian","sigma":1.3,"zeroAtOrBelow":3}, counts at or below the threshold shown as 0.',
    group: 'Privacy',
  },
  minItemShare: { label: 'Least item share', help: 'An item must reach this share of the cohort to be suggested (0–1).', group: 'Cards', unit: 'share' },
  routineBaselineShare: { label: 'Routine share', help: 'Items given to this share of all visits or more are one “routine” line (0–1).', group: 'Cards', unit: 'share' },
  maxItemsPerCard: { label: 'Items per card', help: 'At most this many suggestions on a workup or treatment card.', group: 'Cards', unit: 'items' },
  admissionWarningRate: { label: 'Admission warning', help: 'The prognosis card warns at this admission rate or above (0–1).', group: 'Cards', unit: 'share' },
  returnWarningRate: { label: '72-h return warning', help: 'The prognosis card warns at this 72-hour return rate or above (0–1).', group: 'Cards', unit: 'share' },
  itemWeighting: { label: 'Item ranking weights', help: 'Rank a cohort’s items by plain counts, or by counts weighted with the reputation of the clinician who ordered them; the counts shown stay the true ones.', group: 'Cards' },
  feedbackRanking: {
    label: 'Feedback in the ranking',
    help: 'Use clinicians’ acceptance of past suggestions: {"kind":"none"}, or {"kind":"beta","priorAcceptance":0.5,"priorStrength":20,"minOutcomes":20}.',
    group: 'Cards',
  },
  overrideReasons: {
    label: 'Override reasons',
    help: 'Reasons a clinician may pick when dismissing a workup or treatment card: a JSON list of {"system","code","display"}; empty offers none.',
    group: 'Cards',
  },
};

export const fieldGroups = ['Matching', 'Relaxation', 'Privacy', 'Cards', 'Other'];

/** Choices in words, by `field.value`; a choice not listed shows as it is. */
/** @type {Record<string, string>} */
export const choiceLabels = {
  'acuityMatch.ignore': 'ignore',
  'acuityMatch.exact': 'same level',
  'acuityMatch.within-1': 'within one level',
  'complaintMatch.primary': 'primary concept',
  'complaintMatch.any': 'any of the patient’s concepts',
  'icd10Level.full': 'full code',
  'icd10Level.category': 'category (3 characters)',
  'icd10Overlap.any': 'at least one in common',
  'icd10Overlap.all': 'all of the patient’s',
  'icd10Overlap.jaccard': 'Jaccard index',
  'itemWeighting.none': 'plain counts',
  'itemWeighting.clinician-reputation': 'clinician reputation',
};
