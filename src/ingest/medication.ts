/**
 * Medication product strings to ingredients, so that "Morphine Sulfat 4mg/1mL 1mL VIAL", "Morphine" and
 * "Morphine Sulfate" count as one treatment. Pharmacy systems truncate names (MIMIC ED keeps about ten
 * characters of the generic name before the strength), add salts, strengths and dose forms, and sometimes
 * give a brand name; the curated lexicon below covers common ED and hospital ingredients, and anything else
 * falls back to its first word.
 */

/** Code system of the ingredient codes this module makes (`morphine`, `piperacillin-tazobactam`). */
export const ingredientCodeSystem = 'urn:cohort-cds:ingredient';

export interface Ingredient {
  /** Lower-case slug of the ingredient name; combinations join their parts with `-`. */
  readonly code: string;
  readonly display: string;
}

/**
 * Display name first, then other names the ingredient goes by (brands, abbreviations, pharmacy spellings).
 * The code is the slug of the display name. Combination products stay one ingredient string.
 */
const lexicon: ReadonlyArray<readonly [string, ...string[]]> = [
  // Analgesics, anaesthetics, reversal
  ['Acetaminophen', 'tylenol', 'apap', 'paracetamol', 'ofirmev'],
  ['Ibuprofen', 'motrin', 'advil'],
  ['Ketorolac', 'toradol'],
  ['Naproxen', 'naprosyn', 'aleve'],
  ['Celecoxib', 'celebrex'],
  ['Aspirin', 'asa', 'acetylsalicylic acid'],
  ['Morphine', 'ms contin'],
  ['Hydromorphone', 'dilaudid'],
  ['Fentanyl', 'sublimaze'],
  ['Oxycodone', 'oxycontin', 'roxicodone'],
  ['Oxycodone-acetaminophen', 'percocet', 'oxycodone-apap'],
  ['Hydrocodone-acetaminophen', 'vicodin', 'norco', 'hydrocodone-apap'],
  ['Codeine'],
  ['Tramadol', 'ultram'],
  ['Methadone'],
  ['Buprenorphine'],
  ['Buprenorphine-naloxone', 'suboxone'],
  ['Naloxone', 'narcan'],
  ['Lidocaine', 'xylocaine', 'lidoderm'],
  ['Bupivacaine', 'marcaine'],
  ['Gabapentin', 'neurontin'],
  ['Pregabalin', 'lyrica'],
  ['Ketamine', 'ketalar'],
  ['Methocarbamol', 'robaxin'],
  ['Cyclobenzaprine', 'flexeril'],
  ['Sumatriptan', 'imitrex'],
  // Gastrointestinal
  ['Ondansetron', 'zofran'],
  ['Metoclopramide', 'reglan'],
  ['Prochlorperazine', 'compazine'],
  ['Promethazine', 'phenergan'],
  ['Famotidine', 'pepcid'],
  ['Pantoprazole', 'protonix'],
  ['Omeprazole', 'prilosec'],
  ['Esomeprazole', 'nexium'],
  ['Ranitidine', 'zantac'],
  ['Sucralfate', 'carafate'],
  ['Aluminum-magnesium hydroxide', 'aluminum-magnesium', 'maalox', 'mylanta', 'aluminum hydroxide-magnesium hydroxide'],
  ['Simethicone'],
  ['Lactulose', 'enulose'],
  ['Polyethylene glycol', 'miralax', 'golytely', 'peg'],
  ['Senna', 'sennosides', 'senokot'],
  ['Docusate', 'colace'],
  ['Bisacodyl', 'dulcolax'],
  ['Loperamide', 'imodium'],
  ['Dicyclomine', 'bentyl'],
  ['Octreotide', 'sandostatin'],
  ['Belladonna alkaloids-phenobarbital', 'donnatol'],
  ['Glucagon'],
  // Sedation, psychiatry, neurology
  ['Lorazepam', 'ativan'],
  ['Diazepam', 'valium'],
  ['Midazolam', 'versed'],
  ['Alprazolam', 'xanax'],
  ['Clonazepam', 'klonopin'],
  ['Chlordiazepoxide', 'librium'],
  ['Haloperidol', 'haldol'],
  ['Droperidol', 'inapsine'],
  ['Olanzapine', 'zyprexa'],
  ['Quetiapine', 'seroquel'],
  ['Ziprasidone', 'geodon'],
  ['Risperidone', 'risperdal'],
  ['Diphenhydramine', 'benadryl'],
  ['Hydroxyzine', 'atarax', 'vistaril'],
  ['Trazodone', 'desyrel'],
  ['Bupropion', 'wellbutrin'],
  ['Citalopram', 'celexa'],
  ['Escitalopram', 'lexapro'],
  ['Fluoxetine', 'prozac'],
  ['Sertraline', 'zoloft'],
  ['Amitriptyline', 'elavil'],
  ['Divalproex', 'depakote', 'valproate', 'valproic acid'],
  ['Levetiracetam', 'keppra'],
  ['Phenytoin', 'dilantin'],
  ['Fosphenytoin', 'cerebyx'],
  ['Lamotrigine', 'lamictal'],
  ['Lacosamide', 'vimpat'],
  ['Phenobarbital'],
  ['Propofol', 'diprivan'],
  ['Etomidate', 'amidate'],
  ['Dexmedetomidine', 'precedex'],
  ['Rocuronium', 'zemuron'],
  ['Succinylcholine', 'anectine'],
  ['Vecuronium'],
  ['Meclizine', 'antivert'],
  ['Nicotine', 'nicoderm'],
  // Cardiovascular
  ['Metoprolol', 'lopressor', 'toprol'],
  ['Labetalol'],
  ['Esmolol', 'brevibloc'],
  ['Carvedilol', 'coreg'],
  ['Propranolol', 'inderal'],
  ['Atenolol', 'tenormin'],
  ['Diltiazem', 'cardizem'],
  ['Verapamil'],
  ['Amlodipine', 'norvasc'],
  ['Nicardipine', 'cardene'],
  ['Hydralazine'],
  ['Lisinopril', 'zestril', 'prinivil'],
  ['Enalaprilat'],
  ['Enalapril', 'vasotec'],
  ['Losartan', 'cozaar'],
  ['Nitroglycerin', 'ntg', 'nitrostat', 'nitro-bid'],
  ['Furosemide', 'lasix'],
  ['Bumetanide', 'bumex'],
  ['Torsemide', 'demadex'],
  ['Hydrochlorothiazide', 'hctz'],
  ['Spironolactone', 'aldactone'],
  ['Amiodarone', 'cordarone'],
  ['Adenosine', 'adenocard'],
  ['Digoxin', 'lanoxin'],
  ['Atropine'],
  ['Epinephrine', 'adrenalin', 'epipen'],
  ['Norepinephrine', 'levophed'],
  ['Phenylephrine', 'neo-synephrine'],
  ['Vasopressin', 'vasostrict'],
  ['Dopamine'],
  ['Dobutamine'],
  ['Atorvastatin', 'lipitor'],
  ['Simvastatin', 'zocor'],
  ['Clopidogrel', 'plavix'],
  ['Ticagrelor', 'brilinta'],
  // Anticoagulation and haemostasis
  ['Heparin'],
  // A flush keeps a line open; counting it as heparin would suggest anticoagulation.
  ['Heparin flush', 'heparin lock flush'],
  ['Enoxaparin', 'lovenox'],
  ['Warfarin', 'coumadin'],
  ['Apixaban', 'eliquis'],
  ['Rivaroxaban', 'xarelto'],
  ['Alteplase', 'tpa', 'activase'],
  ['Tenecteplase', 'tnkase'],
  ['Prothrombin complex concentrate', 'kcentra', 'pcc'],
  ['Phytonadione', 'vitamin k', 'mephyton'],
  ['Tranexamic acid', 'txa', 'cyklokapron'],
  ['Protamine'],
  // Anti-infectives
  ['Vancomycin', 'vancocin'],
  ['Ceftriaxone', 'rocephin'],
  ['Cefepime', 'maxipime'],
  ['Ceftazidime', 'fortaz'],
  ['Cefazolin', 'ancef'],
  ['Cephalexin', 'keflex'],
  ['Cefuroxime', 'zinacef'],
  ['Piperacillin-tazobactam', 'piperacillin', 'zosyn', 'pip-tazo'],
  ['Ampicillin-sulbactam', 'unasyn'],
  ['Ampicillin'],
  ['Amoxicillin'],
  ['Amoxicillin-clavulanate', 'augmentin', 'amoxicillin-clavulanic acid'],
  ['Penicillin G', 'penicillin g benzathine', 'bicillin'],
  ['Meropenem', 'merrem'],
  ['Ertapenem', 'invanz'],
  ['Aztreonam', 'azactam'],
  ['Azithromycin', 'zithromax'],
  ['Doxycycline', 'vibramycin'],
  ['Ciprofloxacin', 'cipro'],
  ['Levofloxacin', 'levaquin'],
  ['Moxifloxacin', 'avelox'],
  ['Metronidazole', 'flagyl'],
  ['Clindamycin', 'cleocin'],
  ['Sulfamethoxazole-trimethoprim', 'bactrim', 'sulfameth/trimeth', 'smx-tmp', 'tmp-smx', 'co-trimoxazole'],
  ['Nitrofurantoin', 'macrobid', 'macrodantin'],
  ['Gentamicin'],
  ['Linezolid', 'zyvox'],
  ['Daptomycin', 'cubicin'],
  ['Acyclovir', 'zovirax'],
  ['Oseltamivir', 'tamiflu'],
  ['Fluconazole', 'diflucan'],
  ['Micafungin', 'mycamine'],
  ['Tetanus-diphtheria-pertussis vaccine', 'tdap', 'tetanus-diphtox-acellular pertussis', 'boostrix', 'adacel'],
  ['Tetanus-diphtheria toxoids', 'td', 'tenivac'],
  // Endocrine, fluids, electrolytes, vitamins
  ['Insulin regular', 'insulin human regular', 'insulin regular human', 'humulin r', 'novolin r'],
  ['Insulin glargine', 'lantus', 'basaglar'],
  ['Insulin lispro', 'insulin humalog', 'humalog'],
  ['Insulin aspart', 'insulin novolog', 'novolog'],
  ['Insulin'],
  ['Dextrose', 'd50', 'd50w'],
  ['Metformin', 'glucophage'],
  ['Levothyroxine', 'synthroid'],
  ['Hydrocortisone', 'solu-cortef'],
  ['Methylprednisolone', 'solu-medrol', 'medrol'],
  ['Prednisone'],
  ['Dexamethasone', 'decadron'],
  ['Calcium gluconate'],
  ['Calcium chloride'],
  ['Calcium carbonate', 'tums'],
  ['Magnesium sulfate'],
  ['Magnesium oxide', 'mag-ox'],
  ['Potassium chloride', 'kcl', 'k-dur', 'klor-con'],
  ['Potassium phosphate'],
  ['Sodium bicarbonate', 'bicarb'],
  ['Sodium chloride', 'normal saline', 'ns'],
  ['Lactated Ringer', "lactated ringer's", 'lactated ringers', 'lr'],
  ['Sodium polystyrene sulfonate', 'kayexalate'],
  ['Thiamine', 'vitamin b1'],
  ['Folic acid', 'folate'],
  ['Multivitamin', 'multivitamins', 'mvi'],
  ['Cyanocobalamin', 'vitamin b12'],
  ['Albumin', 'albumin human'],
  // Respiratory
  ['Albuterol', 'ventolin', 'proventil', 'salbutamol'],
  ['Ipratropium', 'atrovent'],
  ['Albuterol-ipratropium', 'duoneb', 'combivent', 'ipratropium-albuterol'],
  ['Racepinephrine'],
  ['Budesonide', 'pulmicort'],
  // Other
  ['Colchicine'],
  ['Allopurinol', 'zyloprim'],
  ['Tamsulosin', 'flomax'],
  ['Artificial tears'],
  ['Barium sulfate', 'readi-cat'],
  ['Diatrizoate', 'gastroview', 'gastrografin'],
  ['Iohexol', 'omnipaque'],
  ['Acetylcysteine', 'mucomyst', 'acetadote'],
  ['Activated charcoal', 'charcoal'],
  ['Fomepizole', 'antizol'],
  ['Flumazenil', 'romazicon'],
  ['Tetracaine'],
  ['Proparacaine', 'alcaine'],
  ['Fluorescein'],
  ['Bacitracin'],
  ['Mupirocin', 'bactroban'],
  ['Silver sulfadiazine', 'silvadene'],
  ['Epoetin alfa', 'epogen', 'procrit'],
];

/** Salt and ester words pharmacy strings append to an ingredient. */
const saltWords: ReadonlySet<string> = new Set([
  'sulfate', 'sulphate', 'sodium', 'na', 'potassium', 'k', 'hcl', 'hydrochloride', 'hydrobromide', 'tartrate',
  'succinate', 'citrate', 'acetate', 'fumarate', 'oxalate', 'maleate', 'mesylate', 'besylate', 'bromide',
  'chloride', 'phosphate', 'gluconate', 'monohydrate', 'monohy', 'calcium', 'magnesium', 'bitartrate',
  'hyclate', 'disodium', 'dihydrate', 'trihydrate', 'lactate', 'decanoate', 'valerate', 'propionate',
]);

/** Words that begin the dose form, route or release part of a product string. */
const formWords: ReadonlySet<string> = new Set([
  'tab', 'tabs', 'tablet', 'tablets', 'cap', 'caps', 'capsule', 'capsules', 'vial', 'bag', 'btl', 'bottle', 'syr',
  'syringe', 'amp', 'ampule', 'kit', 'supp', 'suppository', 'patch', 'ptch', 'neb', 'nebulizer', 'soln', 'solution',
  'inhaler', 'inh', 'hfa', 'iv', 'ivpb', 'im', 'po', 'sl', 'pr', 'sc', 'subq', 'odt', 'xl', 'xr', 'er', 'sr', 'ds',
  'dr', 'ec', 'udcup', 'cup', 'jelly', 'viscous', 'cream', 'ointment', 'oint', 'gel', 'drops', 'elixir', 'liquid',
  'susp', 'suspension', 'spray', 'injection', 'inj', 'infusion', 'premix', 'mbp', 'ujet', 'dbtl', 'oral', 'topical',
  'ophthalmic', 'ophth', 'nasal', 'chewable', 'rectal', 'mini', 'in', 'for', 'with',
]);

/** A name as separate words, e.g. ["magnesium", "sulfate"]. */
type Words = readonly string[];

interface LexiconName {
  readonly words: Words;
  readonly ingredient: Ingredient;
}

/** Truncated names are matched only from this length on, so "met" never guesses between metoprolol and metformin. */
const minimumPrefixLength = 5;
/** After whole words that already match ("calcium"), a shorter truncated last word is enough ("gluco"). */
const minimumTrailingPrefixLength = 3;

function slug(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/** Lower-case words, with the punctuation pharmacy strings scatter (`Hydrox.-Simet`, `Barium Sul 2%)*`) gone. */
function toWords(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/[.,;:*"']/g, ' ')
    .split(/\s+/)
    .filter(Boolean);
}

const lexiconNames: readonly LexiconName[] = lexicon.flatMap(([display, ...aliases]) => {
  const ingredient: Ingredient = { code: slug(display), display };
  return [display, ...aliases].map((name) => ({ words: toWords(name), ingredient }));
});

const exactNames: ReadonlyMap<string, Ingredient> = new Map(lexiconNames.map((name) => [name.words.join(' '), name.ingredient]));

/** Every ingredient of the curated lexicon. */
export const knownIngredients: readonly Ingredient[] = [...new Map(lexiconNames.map((name) => [name.ingredient.code, name.ingredient])).values()];

function isTruncationOf(prefix: string, word: string, minimumLength: number): boolean {
  return prefix.length >= minimumLength && word.startsWith(prefix);
}

/** The lexicon ingredient these words name, whole or with a truncated last word; null when none or ambiguous. */
function lookUp(words: Words): Ingredient | null {
  const exact = exactNames.get(words.join(' '));
  if (exact) return exact;
  const last = words.at(-1);
  if (last === undefined) return null;
  const minimumLength = words.length === 1 ? minimumPrefixLength : minimumTrailingPrefixLength;
  const found = new Map<string, Ingredient>();
  for (const name of lexiconNames) {
    if (name.words.length !== words.length) continue;
    const nameLast = name.words.at(-1) ?? '';
    if (!isTruncationOf(last, nameLast, minimumLength)) continue;
    if (words.slice(0, -1).every((word, index) => word === name.words[index])) found.set(name.ingredient.code, name.ingredient);
  }
  // A prefix shared by two ingredients ("hydroco…": hydrocodone or hydrocortisone) is not a match.
  return found.size === 1 ? ([...found.values()][0] ?? null) : null;
}

/** The leading words that name the product, before strength, dose form or route. */
function nameWords(text: string): string[] {
  const words: string[] = [];
  for (const raw of toWords(text)) {
    const word = raw.replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
    if (word.length === 0) continue;
    if (/\d|%/.test(raw) || formWords.has(word)) break;
    words.push(word);
  }
  return words;
}

/** The longest run of leading words that names a lexicon ingredient; null when none does. */
function lookUpLeadingWords(words: Words): Ingredient | null {
  for (let count = words.length; count >= 1; count -= 1) {
    const found = lookUp(words.slice(0, count));
    if (found) return found;
  }
  return null;
}

/** "hydrocodone-acetamin" → hydrocodone + acetaminophen, when every part is a lexicon ingredient. */
function lookUpCombination(word: string): Ingredient | null {
  const parts = word.split(/[-/]/).filter(Boolean);
  if (parts.length < 2) return null;
  const ingredients = parts.map((part) => lookUp([part]));
  if (ingredients.some((ingredient) => ingredient === null)) return null;
  const found = ingredients as Ingredient[];
  return {
    code: found.map((ingredient) => ingredient.code).join('-'),
    display: found.map((ingredient, index) => (index === 0 ? ingredient.display : ingredient.display.toLowerCase())).join('-'),
  };
}

function fallback(words: Words): Ingredient | null {
  const first = words[0];
  if (first === undefined) return null;
  // A cation named first ("potassium citrate") is the ingredient together with its partner.
  const second = words[1];
  const chosen = saltWords.has(first) && second !== undefined ? [first, second] : [first];
  const name = chosen.join(' ');
  return { code: slug(name), display: name.charAt(0).toUpperCase() + name.slice(1) };
}

function ingredientOfPart(text: string): { readonly ingredient: Ingredient | null; readonly known: boolean } {
  const words = nameWords(text);
  const known =
    lookUpLeadingWords(words) ??
    lookUpLeadingWords(words.filter((word, index) => index === 0 || !saltWords.has(word))) ??
    (words[0] ? lookUpCombination(words[0]) : null);
  if (known) return { ingredient: known, known: true };
  return { ingredient: fallback(words), known: false };
}

/**
 * The ingredient a medication product string names: lexicon match on the leading words (a truncated word of
 * five or more letters matches the ingredient it begins), salts stripped, a brand in parentheses tried next,
 * else the first word.
 */
export function ingredientForMedication(text: string): Ingredient {
  const cleaned = text.normalize('NFKC').replace(/[\p{Cc}\p{Cf}]/gu, ' ').trim();
  const parenthesis = cleaned.indexOf('(');
  const head = parenthesis >= 0 ? cleaned.slice(0, parenthesis) : cleaned;
  const headResult = ingredientOfPart(head);
  if (headResult.known && headResult.ingredient) return headResult.ingredient;
  if (parenthesis >= 0) {
    const inner = cleaned.slice(parenthesis + 1).replace(/\).*$/, '');
    const innerResult = ingredientOfPart(inner);
    if (innerResult.known && innerResult.ingredient) return innerResult.ingredient;
  }
  if (headResult.ingredient) return headResult.ingredient;
  const code = slug(cleaned) || 'unknown';
  return { code, display: cleaned || 'Unknown medication' };
}
