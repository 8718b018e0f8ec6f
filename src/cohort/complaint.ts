/**
 * Free-text chief complaints ("abd pain", "Abdominal pain", "ABD PN", "chest pain, transfer") to concepts.
 * The vocabulary lives in the database (complaint_synonym) and is edited there; this file only holds the
 * matching and the seed that a new database starts with.
 */

/** phrase (normalized) → concept id. */
export type ComplaintVocabulary = ReadonlyMap<string, string>;

/** Concepts that qualify a visit rather than describe it; never the primary concept. */
export const modifierConcepts: ReadonlySet<string> = new Set(['transfer']);

export interface ComplaintConcepts {
  /** Mapped concepts, primary first, without duplicates. */
  readonly concepts: string[];
  /** Parts of the text that no synonym matched (normalized). */
  readonly unmapped: string[];
}

const lateralityPrefix = /^(?:left|right|l|r|b|b\/l|bilateral|bilat|lt|rt)(?:\s+sided)?\s+/;
const statusPostPrefix = /^(?:s\/p|status post)\s+/;
const maximumComplaintLength = 500;

/** Lower case, no control characters, single spaces, no leading '?' or trailing punctuation. */
export function normalizeComplaintPhrase(text: string): string {
  return text
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[\p{Cc}\p{Cf}]/gu, ' ')
    .replace(/[^\p{L}\p{N}\s/+-]/gu, ' ')
    .replace(/\bpains\b/g, 'pain')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Splits a complaint on the separators triage notes use between complaints. */
export function splitComplaint(text: string): string[] {
  return text
    .slice(0, maximumComplaintLength)
    .split(/[,;]|\s+&\s+/)
    .map((part) => normalizeComplaintPhrase(part.replace(/^\s*\?+/, '')))
    .filter((part) => part.length > 0);
}

function lookUp(phrase: string, vocabulary: ComplaintVocabulary): string | undefined {
  const candidates = [phrase, phrase.replace(lateralityPrefix, ''), phrase.replace(statusPostPrefix, '')];
  for (const candidate of candidates) {
    const concept = vocabulary.get(candidate);
    if (concept !== undefined) return concept;
  }
  return undefined;
}

/** The concepts a free-text complaint names; the first non-modifier concept is the primary one. */
export function conceptsForComplaint(text: string | null | undefined, vocabulary: ComplaintVocabulary): ComplaintConcepts {
  if (!text) return { concepts: [], unmapped: [] };
  const found: string[] = [];
  const unmapped: string[] = [];
  for (const part of splitComplaint(text)) {
    const concept = lookUp(part, vocabulary);
    if (concept === undefined) unmapped.push(part);
    else if (!found.includes(concept)) found.push(concept);
  }
  const concepts = [...found.filter((concept) => !modifierConcepts.has(concept)), ...found.filter((concept) => modifierConcepts.has(concept))];
  return { concepts, unmapped };
}

/** The concept that a cohort is matched on, or null when the complaint maps to nothing clinical. */
export function primaryConcept(concepts: readonly string[]): string | null {
  return concepts.find((concept) => !modifierConcepts.has(concept)) ?? null;
}

/** Seed vocabulary for a new database: concept → [display, phrases…]. Built from the triage notes of the demo. */
export const defaultComplaintConcepts: Readonly<Record<string, readonly [string, ...string[]]>> = {
  'abdominal-pain': ['Abdominal pain', 'abd pain', 'abdominal pain', 'abd pn', 'abdo pain', 'stomach pain', 'belly pain', 'epigastric pain', 'rlq abdominal pain', 'rlq pain', 'llq pain', 'ruq pain', 'luq pain', 'luq abd pain', 'rlq abd pain', 'ruq abd pain', 'llq abd pain', 'lower abdominal pain', 'upper abdominal pain', 'suprapubic pain', 'flank pain'],
  'chest-pain': ['Chest pain', 'chest pain', 'cp', 'chest pressure', 'chest tightness', 'nstemi', 'stemi'],
  dyspnea: ['Dyspnea', 'dyspnea', 'shortness of breath', 'sob', 'short of breath', 'dyspnea on exertion', 'doe', 'hypoxia', 'lethargy/sob', 'sob/abnl labs', 'laryngitis/sob with talking', 'difficulty breathing'],
  fall: ['Fall', 's/p fall', 'fall', 'fell', 'mechanical fall'],
  weakness: ['Weakness', 'weakness', 'generalized weakness', 'leg weakness', 'unable to ambulate', 'fatigue', 'lethargy', 'lethagic', 'lethargic', 'malaise'],
  'nausea-vomiting': ['Nausea and vomiting', 'n/v', 'n/v/d', 'nausea', 'vomiting', 'nausea/vomiting', 'emesis'],
  hypotension: ['Hypotension', 'hypotension', 'low blood pressure', 'low bp'],
  'abnormal-labs': ['Abnormal labs', 'abnormal labs', 'abnormal lab values', 'abnl labs', 'elevated inr', 'abnormal lab'],
  dizziness: ['Dizziness', 'dizziness', 'dizzy', 'vertigo', 'lightheaded', 'lightheadedness'],
  syncope: ['Syncope', 'syncope', 'presyncope', 'passed out', 'loss of consciousness'],
  'altered-mental-status': ['Altered mental status', 'altered mental status', 'ams', 'confusion', 'confused', 'unresponsive'],
  wound: ['Wound', 'wound eval', 'wound check', 'wound', 'laceration', 'foot laceration'],
  hyperglycemia: ['Hyperglycemia', 'hyperglycemia', 'dka', 'high blood sugar'],
  'back-pain': ['Back pain', 'back pain', 'lower back pain', 'low back pain', 'lbp'],
  fever: ['Fever', 'fever', 'fevers', 'ili', 'flu like symptoms', 'infection'],
  alcohol: ['Alcohol intoxication', 'etoh', 'intoxication', 'alcohol intoxication', 'etoh intoxication'],
  'suicidal-ideation': ['Suicidal ideation', 'si', 'suicidal ideation', 'suicidal'],
  psychiatric: ['Psychiatric', 'psychiatric hold', 'psych eval', 'psychiatric evaluation', 'hallucinations', 'depression', 'anxiety', 'agitation', 'insomnia'],
  'abdominal-distention': ['Abdominal distention', 'abdominal distention', 'abdominal distension', 'ascites', 'leaking ascites', 'abdominal mass'],
  diarrhea: ['Diarrhea', 'diarrhea'],
  palpitations: ['Palpitations or tachycardia', 'tachycardia', 'palpitations', 'atrial fibrillation', 'afib', 'a fib', 'rapid heart rate'],
  cough: ['Cough', 'cough', 'productive cough'],
  'intracranial-hemorrhage': ['Intracranial hemorrhage', 'head bleed', 'sdh', 'sah', 'sdh/sah', 'ich', 'intracranial hemorrhage', 'brain bleed'],
  'limb-pain': ['Limb pain', 'leg pain', 'arm pain', 'foot pain', 'knee pain', 'wrist pain', 'shoulder pain', 'hip pain', 'toe pain', 'hand pain', 'ankle pain', 'lower extremity pain', 'wrist injury', 'rib pain', 'jaw pain'],
  'limb-swelling': ['Limb swelling or DVT', 'leg swelling', 'arm swelling', 'foot swelling', 'ankle swelling', 'dvt', 'leg dvt', 'arm numbness'],
  'gi-bleed': ['GI bleeding', 'brbpr', 'gi bleed', 'gib', 'hematemesis', 'coffee ground emesis', 'vomiting blood', 'melena', 'rectal bleeding', 'blood in stool'],
  dehydration: ['Dehydration', 'dehydration', 'decreased po intake', 'poor po intake'],
  seizure: ['Seizure', 'seizure', 'seizures'],
  'neck-pain': ['Neck pain', 'neck pain'],
  'pulmonary-embolism': ['Pulmonary embolism', 'pe', 'pulmonary embolism'],
  urinary: ['Urinary symptoms', 'hematuria', 'dysuria', 'urinary retention', 'clogged foley', 'uti', 'foley problem'],
  anemia: ['Anemia', 'anemia', 'low hemoglobin'],
  neutropenia: ['Neutropenia', 'neutropenia', 'neutropenic fever'],
  hypoglycemia: ['Hypoglycemia', 'hypoglycemia', 'low blood sugar'],
  'head-injury': ['Head injury', 'head injury', 'head trauma', 'head strike'],
  hypertension: ['Hypertension', 'hypertension', 'elevated bp', 'high blood pressure'],
  headache: ['Headache', 'headache', 'ha', 'migraine'],
  stroke: ['Stroke symptoms', 'cva', 'stroke', 'facial droop', 'facial numbness', 'diplopia', 'slurred speech', 'aphasia'],
  trauma: ['Trauma', 'mvc', 'car vs pole', 'assault', 'mvc/intubated trauma', 'trauma', 'motor vehicle collision', 'ped struck', 't-spine fx displacement', 'hip fx'],
  'cardiac-arrest': ['Cardiac or respiratory arrest', 'cardiac arrest', 'arrest', 'resp arrest', 'respiratory arrest'],
  eye: ['Eye complaint', 'eye pain', 'eye eval', 'eye swelling', 'vision loss', 'blurry vision'],
  ear: ['Ear complaint', 'ear pain', 'ear pain/drainage', 'tinnitus'],
  'skin-infection': ['Skin or soft tissue infection', 'cellulitis', 'leg cellulitis', 'foot infection', 'foot ulcer/cellulitis', 'abscess', 'picc line infection', 'foot ulcer'],
  rash: ['Rash', 'rash', 'redness', 'allergic reaction', 'hives'],
  overdose: ['Overdose', 'overdose', 'od', 'ingestion'],
  transfer: ['Transfer', 'transfer', 'transfer from osh', 'osh transfer'],
};
