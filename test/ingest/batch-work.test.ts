import { describe, expect, it } from '@jest/globals';
import { batchOfPatient, stageLines } from '../../src/ingest/batch-work.js';

const refusal = (patient: Record<string, unknown>) => ({
  resourceType: 'Consent',
  status: 'active',
  scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'research' }] },
  category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
  provision: { type: 'deny' },
  ...patient,
});

describe('stageLines and Consent', () => {
  it("stages a research refusal with its patient, counts one it cannot place, and drops other consents", () => {
    const batchCount = 8;
    const lines = [
      refusal({ patient: { reference: 'Patient/p-1' } }),
      refusal({ patient: { reference: 'urn:uuid:0b6c1f1e-1111-4c2e-9a55-2d1e3f4a5b6c' } }),
      { ...refusal({ patient: { reference: 'Patient/p-2' } }), provision: { type: 'permit' } },
      { ...refusal({ patient: { reference: 'Patient/p-3' } }), status: 'inactive' },
    ].map((resource) => JSON.stringify(resource));
    const chunk = stageLines(lines, 1, batchCount);
    expect(chunk.resources).toBe(4);
    expect(chunk.byResourceType).toEqual({ Consent: 4 });
    expect(chunk.unresolvedConsents).toBe(1);
    expect(chunk.withoutPatient).toBe(0);
    // Only the refusal of p-1 is staged, as a bare marker in p-1's batch: no text of the Consent is kept.
    expect(chunk.batches).toEqual([[batchOfPatient('p-1', batchCount), `${JSON.stringify(['p-1', { resourceType: 'Consent' }])}\n`]]);
  });
});
