/**
 * Staging keeps only the fields the conversion reads (reduceForConversion). Every field cohortRecordsForPatient
 * reads must be kept: the whole MIMIC demo converted from full resources and from reduced ones gives the same rows.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from '@jest/globals';
import { createKeyHasher } from '../../src/ingest/deidentify.js';
import { cohortRecordsForPatient, reduceForConversion, type PatientResources, type ResourceLike } from '../../src/ingest/fhir-to-cohort.js';
import { mimicDemoDirectory } from '../helpers/app.js';
import { patientIdOfResource } from '../../src/ingest/batch-work.js';

type Json = Record<string, any>;


/** Resources by patient, as staging groups them (the patient id travels beside the resource, not in it). */
function group(resources: ReadonlyArray<readonly [string, ResourceLike]>): Map<string, PatientResources> {
  const byPatient = new Map<string, Record<string, any>>();
  for (const [id, resource] of resources) {
    const entry = byPatient.get(id) ?? { patient: undefined, encounters: [], conditions: [], observations: [], serviceRequests: [], medications: [], procedures: [] };
    byPatient.set(id, entry);
    switch (resource.resourceType) {
      case 'Patient': entry.patient = resource; break;
      case 'Encounter': entry.encounters.push(resource); break;
      case 'Condition': entry.conditions.push(resource); break;
      case 'Observation': entry.observations.push(resource); break;
      case 'ServiceRequest': entry.serviceRequests.push(resource); break;
      case 'Procedure': entry.procedures.push(resource); break;
      case 'MedicationDispense':
      case 'MedicationAdministration':
      case 'MedicationRequest': entry.medications.push(resource); break;
      default: break;
    }
  }
  return byPatient as Map<string, PatientResources>;
}

describe('reduceForConversion', () => {
  it('keeps every field the conversion reads: the demo gives the same rows from full and from reduced resources', () => {
    const full: ResourceLike[] = [];
    for (const file of readdirSync(mimicDemoDirectory).filter((name) => name.endsWith('.ndjson.gz')).sort()) {
      for (const line of gunzipSync(readFileSync(path.join(mimicDemoDirectory, file))).toString('utf8').split('\n')) {
        if (line.trim()) full.push(JSON.parse(line) as ResourceLike);
      }
    }
    const withPatient = full.flatMap((resource) => {
      const id = patientIdOfResource(resource as Json);
      return id === null ? [] : [[id, resource] as const];
    });
    const reduced = withPatient.flatMap(([id, resource]) => {
      const kept = reduceForConversion(resource);
      return kept === null ? [] : [[id, kept] as const];
    });
    expect(reduced.length).toBeLessThan(withPatient.length);
    // Every ICD-9 code of the demo mapped, so that the mapping path is read too; the complaint vocabulary is empty.
    const icd9Map = new Map<string, string[]>();
    for (const resource of full) {
      for (const coding of ((resource as Json).code?.coding ?? []) as Json[]) {
        if (typeof coding.system === 'string' && coding.system.includes('icd9')) icd9Map.set(String(coding.code), ['R69']);
      }
    }
    expect(icd9Map.size).toBeGreaterThan(20);
    const context = { hasher: createKeyHasher('conversion-input-test-secret-0123456789'), vocabulary: new Map<string, string>(), icd9Map, labLeadMinutes: 60 };
    const fromFull = group(withPatient);
    const fromReduced = group(reduced);
    expect([...fromReduced.keys()].sort()).toEqual([...fromFull.keys()].sort());
    let records = 0;
    for (const [patientId, resources] of fromFull) {
      const expected = cohortRecordsForPatient(resources, context);
      records += expected.records.length;
      expect({ patientId, conversion: cohortRecordsForPatient(fromReduced.get(patientId)!, context) }).toEqual({ patientId, conversion: expected });
    }
    expect(records).toBeGreaterThan(200);
  });
});
