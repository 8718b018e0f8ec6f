import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { relaxationDescriptions, type RelaxationStep } from '../../src/cohort/rules.js';
import { createApiKey } from '../../src/db/api-key.repository.js';
import { consoleContentSecurityPolicy } from '../../src/http/console.routes.js';
import type { ExplanationPayload } from '../../src/http/explanation-link.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';

/** The app's fixed clock (test/helpers/app.ts): links are signed and checked on it. */
const appNow = new Date('2026-11-23T12:00:00Z');

const abdominalPain = { ageYears: 64, sex: 'female', chiefComplaint: 'ABD PAIN, N/V', icd10Codes: ['R10.9'], acuity: null };

describe('console and explanation page over HTTP', () => {
  let testApp: TestApp;
  let key: string;
  const as = () => ({ authorization: `Bearer ${key}` });

  beforeAll(async () => {
    testApp = await buildTestApp({ rateLimitPerMinute: 0, publicBaseUrl: 'https://cds.example.org' });
    key = (await createApiKey(testApp.database.db, { name: 'ada', role: 'informaticist', createdBy: 'test' })).key;
    // Ingesting the demo takes about 15 s alone; on a machine shared with other work it has taken over a minute.
  }, 180_000);

  afterAll(async () => {
    await testApp.close();
  });

  /** The link of the first card of a preview, and the preview. */
  async function cardLink(kind: 'workup' | 'prognosis') {
    const preview = await testApp.app.inject({ method: 'POST', url: '/admin/rules/1/preview', headers: as(), payload: { facts: abdominalPain } });
    expect(preview.statusCode).toBe(200);
    const body = preview.json();
    const card = kind === 'workup' ? body.cards[0] : body.cards.at(-1);
    expect(card.links[0].url).toContain('/explain/');
    return { url: new URL(card.links[0].url as string), preview: body };
  }

  it('serves the console page with its own strict CSP, and only script and style files from its folder', async () => {
    const { app } = testApp;
    for (const url of ['/console', '/console/rules', '/console/rules/7', '/console/backtest/compare/1/2']) {
      const page = await app.inject({ method: 'GET', url });
      expect(page.statusCode).toBe(200);
      expect(page.headers['content-type']).toMatch(/^text\/html/);
      expect(page.headers['content-security-policy']).toBe(consoleContentSecurityPolicy);
      expect(page.body).toContain('<script type="module" src="/console/assets/js/main.js"></script>');
      // No inline script or style for the CSP to have to allow.
      expect(page.body).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/);
      expect(page.body).not.toMatch(/<style|\sstyle=/);
    }
    expect(consoleContentSecurityPolicy).toContain("script-src 'self'");
    expect(consoleContentSecurityPolicy).toContain("frame-ancestors 'none'");
    expect(consoleContentSecurityPolicy).not.toContain('unsafe');

    const script = await app.inject({ method: 'GET', url: '/console/assets/js/main.js' });
    expect(script.statusCode).toBe(200);
    expect(script.headers['content-type']).toMatch(/javascript/);
    expect(script.headers['content-security-policy']).toBe(consoleContentSecurityPolicy);
    expect(script.headers['x-content-type-options']).toBe('nosniff');
    expect((await app.inject({ method: 'GET', url: '/console/assets/style.css' })).statusCode).toBe(200);
    for (const url of ['/console/assets/tsconfig.json', '/console/assets/index.html', '/console/assets/../../paths.ts', '/console/assets/%2e%2e/%2e%2e/paths.ts', '/console/assets/js/missing.js']) {
      expect((await app.inject({ method: 'GET', url })).statusCode).toBe(404);
    }
  });

  it('leaves the JSON API under its own policy, and answers 401 without a key', async () => {
    const { app } = testApp;
    const admin = await app.inject({ method: 'GET', url: '/admin/rules' });
    expect(admin.statusCode).toBe(401);
    expect(admin.json()).toMatchObject({ error: 'unauthorized' });
    expect(admin.headers['content-security-policy']).toMatch(/^default-src 'none'/);
    expect(admin.headers['content-security-policy']).not.toContain("script-src 'self'");
    const schema = await app.inject({ method: 'GET', url: '/console/api/rules-schema' });
    expect(schema.statusCode).toBe(401);
    const withKey = await app.inject({ method: 'GET', url: '/console/api/rules-schema', headers: as() });
    expect(withKey.statusCode).toBe(200);
    const body = withKey.json();
    expect(body.schema.properties.minItemShare).toMatchObject({ type: 'number', minimum: 0, maximum: 1, default: 0.1 });
    expect(body.schema.properties.matchSex).toMatchObject({ type: 'boolean' });
    expect(body.relaxationSteps.map((step: { step: string }) => step.step)).toContain('widen-age');
  });

  it('explains a real card from its link: criteria, relaxation, version, size and the counts behind each percentage', async () => {
    const { url, preview } = await cardLink('workup');
    expect(url.origin).toBe('https://cds.example.org');
    const page = await testApp.app.inject({ method: 'GET', url: url.pathname });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['content-security-policy']).toBe(consoleContentSecurityPolicy);
    expect(page.headers['cache-control']).toBe('private, no-store');
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    const html = page.body;
    expect(html).toContain('How this cohort was chosen');
    expect(html).toContain('Workup card');
    expect(html).toContain('<strong>v1</strong>');
    expect(html).toContain(`<div class="big-number">${preview.cohortSize}</div>`);
    expect(html).toContain('abdominal pain');
    expect(preview.relaxation.length).toBeGreaterThan(0);
    for (const step of preview.relaxation as RelaxationStep[]) expect(html).toContain(`<li>${relaxationDescriptions[step]}</li>`);
    // Every item on the card appears with its count "n of size".
    const detail = preview.cards[0].detail as string;
    const rows = [...detail.matchAll(/^\| ([^|]+?) \| \d+% \((\d+) of \d+\)/gm)];
    expect(rows.length).toBeGreaterThan(0);
    for (const [, item, count] of rows) {
      expect(html).toMatch(new RegExp(`<td>${item!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}</td>\\s*<td class="num"><strong>${count}</strong> of ${preview.cohortSize}</td>`));
    }
    // Outcomes as the prognosis card shows them: a small count is "fewer than 11", never the number.
    const prognosis = preview.cards.at(-1).summary as string;
    if (prognosis.includes('return fewer than 11')) expect(html).toMatch(/Returned to the ED within 72 h<\/th><td><span class="suppressed">fewer than 11<\/span> of \d+/);
    expect(html).not.toMatch(/patient\/|Patient\/|preview-patient/);
  });

  it('refuses a tampered, truncated or expired link with an HTML page', async () => {
    const { url } = await cardLink('prognosis');
    const token = url.pathname.slice('/explain/'.length);
    const [body, signature] = token.split('.') as [string, string];
    const flipped = `${body}.${signature.startsWith('A') ? 'B' : 'A'}${signature.slice(1)}`;
    // A payload changed to another version, signed with nothing: the signature no longer matches.
    const decoded = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    decoded.payload.criteria.sex = 'male';
    const forged = `${Buffer.from(JSON.stringify(decoded)).toString('base64url')}.${signature}`;
    for (const bad of [flipped, forged, body, 'x', `${token}.extra`]) {
      const page = await testApp.app.inject({ method: 'GET', url: `/explain/${bad}` });
      expect(page.statusCode).toBe(404);
      expect(page.headers['content-type']).toMatch(/^text\/html/);
      expect(page.headers['content-security-policy']).toBe(consoleContentSecurityPolicy);
      expect(page.body).toContain('This link is not valid');
      expect(page.body).not.toContain('similar prior ED visits');
    }
    const payload = decoded.payload as ExplanationPayload;
    const expired = testApp.app.explanationLinks.codec.sign(payload, new Date(appNow.getTime() - 1000));
    const gone = await testApp.app.inject({ method: 'GET', url: `/explain/${expired}` });
    expect(gone.statusCode).toBe(410);
    expect(gone.body).toContain('This link has expired');
    const unknownVersion = testApp.app.explanationLinks.codec.sign({ ...payload, rulesVersion: 999 }, new Date(appNow.getTime() + 60_000));
    expect((await testApp.app.inject({ method: 'GET', url: `/explain/${unknownVersion}` })).statusCode).toBe(404);
  });

  it('escapes hostile text from the data and from the link on the explanation page', async () => {
    const hostile = '<img src=x onerror=alert(1)> "pain" & <script>alert(2)</script>';
    await testApp.database.db.insertInto('complaint_concept').values({ concept: 'hostile-pain', display: hostile }).execute();
    testApp.app.referenceData.invalidate();
    const payload: ExplanationPayload = {
      serviceId: 'order-select"><script>alert(3)</script>',
      kind: 'prognosis',
      rulesVersion: 1,
      criteria: {
        sex: null,
        ageMin: null,
        ageMax: null,
        acuity: null,
        complaintConcept: 'hostile-pain',
        otherComplaintConcepts: ['<b>bold</b>'],
        icd10: { level: 'full', codes: ['R10</td><script>alert(4)</script>'], overlap: { measure: 'any' } },
        sites: ['"><svg onload=alert(5)>'],
        lookback: null,
      },
      relaxation: ['<iframe src=javascript:alert(6)>'],
    };
    const token = testApp.app.explanationLinks.codec.sign(payload, new Date(appNow.getTime() + 60_000));
    const page = await testApp.app.inject({ method: 'GET', url: `/explain/${token}` });
    expect(page.statusCode).toBe(200);
    const html = page.body;
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt; &quot;pain&quot; &amp; &lt;script&gt;alert(2)&lt;/script&gt;'.toLowerCase());
    expect(html).toContain('&lt;iframe src=javascript:alert(6)&gt;');
    expect(html).toContain('&quot;&gt;&lt;svg onload=alert(5)&gt;');
    // The only markup is the page's own: no script element at all, no event handler attribute.
    expect(html).not.toMatch(/<script|<img|<iframe|<svg|<b>/i);
    expect(html).not.toMatch(/<[a-z][^>]*\son\w+=/i);
  });
});
