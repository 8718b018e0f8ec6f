import { describe, expect, it } from '@jest/globals';
import { ingredientCodeSystem, ingredientForMedication, knownIngredients } from '../../src/ingest/medication.js';

describe('ingredientForMedication', () => {
  // Product strings as MIMIC-IV-ED dispenses them: truncated, with salts, strengths and dose forms.
  it.each([
    ['Morphine Sulfat 4mg/1mL 1mL VIAL', 'morphine'],
    ['Morphine', 'morphine'],
    ['Morphine Sulfate', 'morphine'],
    ['Vancomyci 1000mg/200mL 200mL BAG', 'vancomycin'],
    ['Vancomycin', 'vancomycin'],
    ['HYDROmorphone (D 1mg/1mL 1mL SYR', 'hydromorphone'],
    ['HYDROmorphone (Dilaudid)', 'hydromorphone'],
    ['Hepari 25000UNIT/250mL 250mL BAG', 'heparin'],
    ['Heparin Sodium', 'heparin'],
    ['Nitroglyce 100mg/250mL 250mL BTL', 'nitroglycerin'],
    ['Nitroglycerin SL 0.4mg BTL', 'nitroglycerin'],
    ['MetroNIDAZ 500mg/100mL 100mL BAG', 'metronidazole'],
    ['MetRONIDAZOLE (Flagyl)', 'metronidazole'],
    ['CefTRIAXone (Mini Bag Plus)', 'ceftriaxone'],
    ['CeftriaXONE', 'ceftriaxone'],
    ['LORazepam 2mg/1mL 1mL SYR', 'lorazepam'],
    ['Acetaminophen 500mg TAB', 'acetaminophen'],
    ['Acetamin 1000mg/100mL 100mL Vial', 'acetaminophen'],
    ['Acetaminophen (Rectal 650mg SUPP', 'acetaminophen'],
    ['Piperacilli 4.5g/100mL 100mL BAG', 'piperacillin-tazobactam'],
    ['Piperacillin-Tazobactam Na', 'piperacillin-tazobactam'],
    ['Hydrocodone-Acetamin(5mg-325mg)', 'hydrocodone-acetaminophen'],
    ['Oxycodone-Acetaminophen 1TAB TAB', 'oxycodone-acetaminophen'],
    ['Sulfameth/Trimeth DS', 'sulfamethoxazole-trimethoprim'],
    ['Amoxicillin-Clavulanic Acid', 'amoxicillin-clavulanate'],
    ['Ciprofloxa 400mg/200mL 200mL BAG', 'ciprofloxacin'],
    ['Levofloxac 750mg/150mL 150mL BAG', 'levofloxacin'],
    ['LeVETirace 500mg/100mL 100mL MBP', 'levetiracetam'],
    ['NORepinephri 8mg/250mL 250mL BAG', 'norepinephrine'],
    ['NORepinephrine (in NS)', 'norepinephrine'],
    ['Metoprolol Tartrate 25mg TAB', 'metoprolol'],
    ['Metoprolol Succinate XL', 'metoprolol'],
    ['Losartan Potassium 25mg TAB', 'losartan'],
    ['Hydrocortisone Na Succinate', 'hydrocortisone'],
    ['MethylPREDNISolone Sodium Succ', 'methylprednisolone'],
    ['Nitrofurantoin Monohy (MacroBID)', 'nitrofurantoin'],
    ['Calcium Gluco 2g/100mL 100mL BAG', 'calcium-gluconate'],
    ['Magnesium Sulf 2gm/50mL 50mL BAG', 'magnesium-sulfate'],
    ['Magnesium Oxide', 'magnesium-oxide'],
    ['Potassium Chloride 10mEq TAB', 'potassium-chloride'],
    ['Sodium Chloride 0.9%  (Mini Bag Plus)', 'sodium-chloride'],
    ['Sodium Bicarbonate', 'sodium-bicarbonate'],
    ['Insulin Human Regular', 'insulin-regular'],
    ['Insulin HumaLOG', 'insulin-lispro'],
    ['Insulin Glargine', 'insulin-glargine'],
    ['Lidocaine Jelly 2% (Urojet)', 'lidocaine'],
    ['Lidocaine 5% Patch 1PTCH PTCH', 'lidocaine'],
    ['Diltiazem Extended-Rel 120mg CAP', 'diltiazem'],
    ['Aluminum-Magnesium Hy 30mL UDCUP', 'aluminum-magnesium-hydroxide'],
    ['Aluminum-Magnesium Hydrox.-Simet', 'aluminum-magnesium-hydroxide'],
    ['Readi-Cat 2  (Barium Sul 2%)*', 'barium-sulfate'],
    ['Gastroview (Diatrizoate 30mL BTL', 'diatrizoate'],
    ['Kcentra 591Units VIAL', 'prothrombin-complex-concentrate'],
    ['Donnatol (Elixir) 5mL Oral Sy', 'belladonna-alkaloids-phenobarbital'],
    ['Tetanus-DiphTox-Acellular Pertuss', 'tetanus-diphtheria-pertussis-vaccine'],
    ['FoLIC Acid 1mg TAB', 'folic-acid'],
    ['Multivitamins 1TAB TAB', 'multivitamin'],
  ])('%s → %s', (text, code) => {
    expect(ingredientForMedication(text).code).toBe(code);
  });

  it('keeps a heparin flush apart from therapeutic heparin', () => {
    expect(ingredientForMedication('Heparin Flush (10 Units/ 5mL SYR').code).toBe('heparin-flush');
    expect(ingredientForMedication('Heparin Flush 100 Unit / 5mL SYR').code).toBe('heparin-flush');
  });

  it('gives the lexicon display name', () => {
    expect(ingredientForMedication('Vancomyci 1000mg/200mL 200mL BAG')).toEqual({ code: 'vancomycin', display: 'Vancomycin' });
  });

  it('falls back to the first word, salts left out, for an ingredient outside the lexicon', () => {
    expect(ingredientForMedication('Zolpidem Tartrate 5mg TAB')).toEqual({ code: 'zolpidem', display: 'Zolpidem' });
    expect(ingredientForMedication('Potassium Citrate 10mEq TAB').code).toBe('potassium-citrate');
  });

  it('does not guess from a short or ambiguous truncation', () => {
    // "Hydroco" begins both hydrocodone and hydrocortisone.
    expect(ingredientForMedication('Hydroco 5mg TAB').code).toBe('hydroco');
    expect(ingredientForMedication('Meto 25mg TAB').code).toBe('meto');
  });

  it('combines two lexicon ingredients joined by a hyphen', () => {
    expect(ingredientForMedication('Acetaminophen-Codeine 300mg TAB')).toEqual({
      code: 'acetaminophen-codeine',
      display: 'Acetaminophen-codeine',
    });
  });

  it('covers about 150 common ingredients with unique codes', () => {
    expect(knownIngredients.length).toBeGreaterThanOrEqual(150);
    expect(new Set(knownIngredients.map((ingredient) => ingredient.code)).size).toBe(knownIngredients.length);
    expect(ingredientCodeSystem).toBe('urn:cohort-cds:ingredient');
  });

  it('never returns an empty code', () => {
    expect(ingredientForMedication('').code).toBe('unknown');
    expect(ingredientForMedication('500mg TAB').code).not.toBe('');
  });
});
