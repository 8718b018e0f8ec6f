import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { buildConfig } from '../../src/config.js';
import { rulesSchema } from '../../src/cohort/rules.js';
import { activateRuleSet, createDraftRuleSet } from '../../src/db/rule-set.repository.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { prefetchedRequest } from '../helpers/cds-hooks-examples.js';
import { forcedActivation } from '../helpers/rules.js';

type Json = Record<string, any>;

const secret = 'noise-secret-noise-secret-noise-secret-01';
const otherSecret = 'another-secret-another-secret-another-02';

/** Patients of the demo's most frequent complaints, so that most get cards. */
const patients = [
  { gender: 'female', birthDate: '2100-05-01', complaint: 'abd pain' },
  { gender: 'male', birthDate: '2090-02-11', complaint: 'chest pain' },
  { gender: 'female', birthDate: '2080-09-21', complaint: 'dyspnea' },
  { gender: 'male', birthDate: '2070-01-30', complaint: 's/p fall' },
  { gender: 'female', birthDate: '2110-07-07', complaint: 'abd pain' },
  { gender: 'male', birthDate: '2060-03-03', complaint: 'weakness' },
];

/** The figures each card shows (summary, detail, source label), per patient. */
async function cardFigures(app: FastifyInstance): Promise<Json[][]> {
  const all: Json[][] = [];
  for (const [index, patient] of patients.entries()) {
    const request = prefetchedRequest('patient-view', {
      patient: { gender: patient.gender, birthDate: patient.birthDate },
      chiefComplaint: patient.complaint,
      hookInstance: `d2a7c9f0-0000-4000-8000-00000000000${index}`,
    });
    const response = await app.inject({ method: 'POST', url: '/cds-services/patient-view', payload: request });
    expect(response.statusCode).toBe(200);
    all.push((response.json().cards as Json[]).map((card) => ({ summary: card.summary, detail: card.detail, label: card.source.label })));
  }
  return all;
}

describe('count noise keyed by the configured secret', () => {
  let first: TestApp;
  let second: FastifyInstance;
  let other: FastifyInstance;

  beforeAll(async () => {
    first = await buildTestApp({ patientHashSecret: secret });
    const draft = await createDraftRuleSet(first.database.db, {
      rules: rulesSchema.parse({ countNoise: { kind: 'gaussian' }, ageWindowYears: 30, widenedAgeWindowYears: 60 }),
      note: 'noise',
      createdBy: 'test',
    });
    await activateRuleSet(first.database.db, draft.version, 'test', { force: { reason: forcedActivation.reason } });
    // Two more instances over the same database, as behind a load balancer: one with the same secret, one without.
    const config = (patientHashSecret: string) => buildConfig({ loadDemoCohort: false, patientHashSecret });
    second = await buildApp(config(secret), { database: first.database, now: () => new Date('2026-11-23T12:00:00Z') });
    other = await buildApp(config(otherSecret), { database: first.database, now: () => new Date('2026-11-23T12:00:00Z') });
    await Promise.all([second.ready(), other.ready()]);
  }, 180_000);

  afterAll(async () => {
    await second?.close();
    await other?.close();
    await first?.close();
  });

  it('two instances with the same secret show the same noisy counts; another secret shows other ones', async () => {
    // The first instance was built before the noisy version was activated: it reads the active rules afresh.
    first.app.referenceData.invalidate();
    const [a, b, c] = [await cardFigures(first.app), await cardFigures(second), await cardFigures(other)];
    const carded = a.filter((cards) => cards.length > 0).length;
    expect(carded).toBeGreaterThanOrEqual(3);
    for (const cards of a.flat()) expect(cards.detail).toContain('Counts carry random noise');
    expect(b).toEqual(a);
    // Same process, so the per-process fallback key is shared: a difference can only come from the configured key.
    expect(c).not.toEqual(a);
  }, 120_000);
});
