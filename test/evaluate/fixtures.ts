import type { EvaluationEncounter } from '../../src/db/evaluation-data.repository.js';
import type { ItemCategory } from '../../src/cohort/types.js';

/** A hand-made item: code, category and a display derived from the code. */
export function item(itemCode: string, category: ItemCategory = 'workup') {
  return { itemCode, category, kind: category === 'workup' ? 'lab' : 'medication', display: itemCode, codeSystem: 'urn:test', code: itemCode };
}

/** One hand-made encounter; a 50-year-old woman with abdominal pain unless overridden. */
export function makeEncounter(overrides: Partial<EvaluationEncounter> & Pick<EvaluationEncounter, 'encounterKey'>): EvaluationEncounter {
  return {
    patientKey: `patient-of-${overrides.encounterKey}`,
    site: 'default',
    startYear: 2150,
    ageYears: 50,
    sex: 'female',
    acuity: 3,
    chiefComplaintText: 'abd pain',
    complaintConcepts: ['abdominal-pain'],
    icd10Codes: [],
    historyIcd10Codes: [],
    admitted: false,
    returned72h: false,
    edLosMinutes: 300,
    hospitalLosMinutes: null,
    items: [],
    ...overrides,
  };
}

/**
 * A deterministic synthetic ED: 300 encounters of 50 patients over 12 years, abdominal pain and chest pain each
 * with their own workup and treatment, a routine panel nearly everyone gets, and rarer extras.
 */
export function makeSyntheticCohort(): EvaluationEncounter[] {
  let seed = 7;
  const next = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const encounters: EvaluationEncounter[] = [];
  for (let index = 0; index < 300; index += 1) {
    const patient = index % 50;
    const abdominal = next() < 0.55;
    const chance = (share: number) => next() < share;
    const some = (shares: Record<string, number>, category: ItemCategory = 'workup') =>
      Object.entries(shares).flatMap(([code, share]) => (chance(share) ? [item(code, category)] : []));
    const items = [
      ...some({ 'panel:routine': 0.95, 'lab:lactate': 0.2, 'panel:coagulation': 0.3, 'lab:blood-culture': 0.15, 'order:type-and-screen': 0.15 }),
      ...(abdominal
        ? [
            ...some({ 'lab:lipase': 0.75, 'img:ct-abdomen': 0.5, 'panel:urinalysis': 0.4, 'panel:liver': 0.45, 'lab:hcg': 0.2, 'img:us-abdomen': 0.25 }),
            ...some({ 'med:morphine': 0.45, 'med:ondansetron': 0.35, 'med:famotidine': 0.2 }, 'treatment'),
          ]
        : [
            ...some({ 'lab:troponin': 0.8, 'img:chest-xray': 0.6, 'order:ecg': 0.7, 'lab:d-dimer': 0.3, 'lab:bnp': 0.35, 'img:cta-chest': 0.15 }),
            ...some({ 'med:aspirin': 0.6, 'med:nitroglycerin': 0.3, 'med:heparin': 0.15 }, 'treatment'),
          ]),
      ...some({ 'med:acetaminophen': 0.25, 'med:saline': 0.3 }, 'treatment'),
      ...(chance(0.05) ? [item(`lab:rare-${index % 7}`)] : []),
    ];
    encounters.push(
      makeEncounter({
        encounterKey: `e${String(index).padStart(3, '0')}`,
        patientKey: `p${String(patient).padStart(2, '0')}`,
        startYear: 2100 + (index % 12),
        ageYears: 25 + ((patient * 7) % 60),
        sex: patient % 2 === 0 ? 'female' : 'male',
        acuity: 1 + Math.floor(next() * 4),
        chiefComplaintText: abdominal ? 'abd pain' : 'chest pain',
        complaintConcepts: [abdominal ? 'abdominal-pain' : 'chest-pain'],
        icd10Codes: abdominal ? ['R1084'] : ['R079'],
        historyIcd10Codes: index % 3 === 0 ? ['I10'] : [],
        admitted: chance(abdominal ? 0.3 : 0.5),
        returned72h: chance(0.08),
        items,
      }),
    );
  }
  return encounters;
}
