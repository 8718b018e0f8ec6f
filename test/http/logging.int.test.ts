import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { buildApp } from '../../src/app.js';
import { buildConfig } from '../../src/config.js';
import { seedDefaultRuleSet } from '../../src/db/rule-set.repository.js';
import { loggerOptions } from '../../src/logger.js';
import { readExampleRequest } from '../helpers/cds-hooks-examples.js';
import { openTestDatabase } from '../helpers/database.js';
import { openReferenceDatabase } from '../helpers/test-templates.js';

describe('logs', () => {
  const lines: string[] = [];
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  let app: Awaited<ReturnType<typeof buildApp>>;

  beforeAll(async () => {
    database = await openReferenceDatabase();
    await seedDefaultRuleSet(database.db);
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    // The FHIR server below is allowed, so the hook does fetch (and fail) rather than being refused with 400.
    const config = buildConfig({ loadDemoCohort: false, logLevel: 'trace', fhirServerAllowlist: ['http://127.0.0.1:9/fhir'] });
    app = await buildApp(config, { database, logger: { ...loggerOptions(config), stream } as never });
    await app.ready();
  });

  afterAll(async () => {
    await app.close();
    await database.close();
  });

  it('hold no access token, JWT or patient identifier, and are JSON', async () => {
    const request = readExampleRequest('patient-view') as Record<string, any>;
    const secretToken = 'secret-access-token-that-must-not-be-logged';
    request.fhirAuthorization = { ...request.fhirAuthorization, access_token: secretToken };
    // A FHIR server that refuses connections: the hook fetches, fails, and answers 412.
    request.fhirServer = 'http://127.0.0.1:9/fhir';
    delete request.prefetch;
    const response = await app.inject({
      method: 'POST',
      url: '/cds-services/patient-view',
      headers: { authorization: 'Bearer eyJhbGciOiJFUzM4NCJ9.eyJpc3MiOiJ4In0.c2ln' },
      payload: request,
    });
    expect(response.statusCode).toBe(412);
    const text = lines.join('');
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
    expect(text).not.toContain(secretToken);
    expect(text).not.toContain('eyJhbGciOiJFUzM4NCJ9');
    expect(text).not.toContain(request.context.patientId);
    expect(response.body).not.toContain(secretToken);
  });
});
