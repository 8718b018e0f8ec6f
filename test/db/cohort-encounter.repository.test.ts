import { describe, expect, it } from '@jest/globals';
import { derivePanels, recognisePanel } from '../../src/db/cohort-encounter.repository.js';

describe('recognisePanel', () => {
  it.each([
    [['Sodium', 'Potassium', 'Chloride', 'Bicarbonate', 'Urea Nitrogen', 'Creatinine', 'Glucose'], 'Basic metabolic panel'],
    [['Hemoglobin', 'Hematocrit', 'White Blood Cells', 'Platelet Count', 'MCV'], 'Complete blood count'],
    [['INR(PT)', 'PT', 'PTT'], 'Coagulation panel'],
    [['Neutrophils', 'Lymphocytes', 'Monocytes', 'Eosinophils', 'Basophils'], 'Blood count differential'],
    [['Specific Gravity', 'Urobilinogen', 'Nitrite', 'Ketone', 'Urine Color'], 'Urinalysis'],
    [['Asparate Aminotransferase (AST)', 'Alanine Aminotransferase (ALT)', 'Alkaline Phosphatase', 'Bilirubin, Total'], 'Liver panel'],
    [['Sodium [Moles/volume] in Serum or Plasma', 'Potassium [Moles/volume] in Serum or Plasma', 'Chloride [Moles/volume] in Serum or Plasma', 'Creatinine [Mass/volume] in Serum or Plasma'], 'Basic metabolic panel'],
  ])('%j is a %s', (displays, name) => {
    expect(recognisePanel(displays)).toBe(name);
  });

  it('does not name an unrecognised set', () => {
    expect(recognisePanel(['Lipase', 'Troponin T'])).toBeNull();
  });
});

describe('derivePanels', () => {
  const analytes = [
    { code: 'lab:na', display: 'Sodium', draws: 10 },
    { code: 'lab:k', display: 'Potassium', draws: 10 },
    { code: 'lab:cl', display: 'Chloride', draws: 9 },
    { code: 'lab:cr', display: 'Creatinine', draws: 10 },
    { code: 'lab:lip', display: 'Lipase', draws: 4 },
    { code: 'lab:trop', display: 'Troponin T', draws: 4 },
    { code: 'lab:lact', display: 'Lactate', draws: 10 },
  ];
  const pairs = [
    { a: 'lab:k', b: 'lab:na', shared: 10 },
    { a: 'lab:cl', b: 'lab:k', shared: 9 },
    { a: 'lab:cr', b: 'lab:na', shared: 9 },
    { a: 'lab:lip', b: 'lab:trop', shared: 3 },
    // Lactate rides along with a few chemistries only: Jaccard 3 / 17 < 0.6.
    { a: 'lab:lact', b: 'lab:na', shared: 3 },
  ];

  it('joins analytes drawn together into named panels and leaves loners alone', () => {
    const panels = derivePanels(analytes, pairs);
    expect(panels).toEqual([
      { panelCode: 'panel:basic-metabolic-panel', display: 'Basic metabolic panel', analyteCodes: ['lab:cr', 'lab:k', 'lab:na', 'lab:cl'] },
      { panelCode: 'panel:lipase-panel-1', display: 'Lipase panel (+1)', analyteCodes: ['lab:lip', 'lab:trop'] },
    ]);
  });

  it('needs more than one shared draw, and the threshold can be raised', () => {
    expect(derivePanels(analytes, pairs, { minimumSharedDraws: 4 }).map((panel) => panel.display)).toEqual(['Basic metabolic panel']);
    expect(derivePanels(analytes, pairs, { minimumJaccard: 0.95 }).map((panel) => panel.analyteCodes)).toEqual([['lab:k', 'lab:na']]);
  });

  it('gives two panels of the same name distinct codes', () => {
    const twoCoags = derivePanels(
      [
        { code: 'lab:inr1', display: 'INR', draws: 5 },
        { code: 'lab:pt1', display: 'PT', draws: 5 },
        { code: 'lab:inr2', display: 'INR(PT)', draws: 3 },
        { code: 'lab:ptt2', display: 'PTT', draws: 3 },
      ],
      [
        { a: 'lab:inr1', b: 'lab:pt1', shared: 5 },
        { a: 'lab:inr2', b: 'lab:ptt2', shared: 3 },
      ],
    );
    expect(twoCoags.map((panel) => panel.panelCode)).toEqual(['panel:coagulation-panel', 'panel:coagulation-panel-2']);
  });
});
