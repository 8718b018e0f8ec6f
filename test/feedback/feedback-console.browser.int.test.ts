/**
 * The console's Feedback page in a real browser (Debian's chromium through playwright-core, as
 * test/console/console.browser.int.test.ts), over feedback sent through the real CDS Hooks endpoint on the demo.
 */
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Browser } from 'playwright-core';
import { suggestedOverrideReasons } from '../../src/cohort/rules.js';
import { createApiKey } from '../../src/db/api-key.repository.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { prefetchedRequest } from '../helpers/cds-hooks-examples.js';
import { forcedActivation } from '../helpers/rules.js';
import { consoleKeyStorageName, eventually, launchChromium } from '../helpers/browser.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON bodies of the HTTP answers
type Json = any;

const abdominalPain = (hookInstance: string) =>
  prefetchedRequest('patient-view', { patient: { gender: 'female', birthDate: '1962-03-01' }, chiefComplaint: 'ABD PAIN, N/V', hookInstance });
const uuidOf = (index: number) => `00000000-0000-4000-8000-${index.toString(16).padStart(12, '0')}`;

describe('console: Feedback page', () => {
  let testApp: TestApp;
  let browser: Browser;
  let baseUrl: string;
  let viewerKey: string;

  beforeAll(async () => {
    testApp = await buildTestApp({ rateLimitPerMinute: 0 });
    const db = testApp.database.db;
    const informaticist = { authorization: `Bearer ${(await createApiKey(db, { name: 'ada', role: 'informaticist', createdBy: 'test' })).key}` };
    viewerKey = (await createApiKey(db, { name: 'vic', role: 'viewer', createdBy: 'test' })).key;
    const created = await testApp.app.inject({
      method: 'POST',
      url: '/admin/rules',
      headers: informaticist,
      payload: { rules: { minCellSize: 3, overrideReasons: suggestedOverrideReasons } },
    });
    await testApp.app.inject({ method: 'POST', url: `/admin/rules/${created.json().version}/activate`, headers: informaticist, payload: forcedActivation });
    // Three workup cards: one accepted for its first suggestion, two overridden (one with a reason, one without).
    for (let index = 0; index < 3; index += 1) {
      const cards: Json[] = (await testApp.app.inject({ method: 'POST', url: '/cds-services/patient-view', payload: abdominalPain(uuidOf(index + 1)) })).json().cards;
      const card = cards.find((candidate) => candidate.suggestions !== undefined);
      const item =
        index === 0
          ? { outcome: 'accepted', acceptedSuggestions: [{ id: card.suggestions[0].uuid }] }
          : { outcome: 'overridden', ...(index === 1 ? { overrideReason: { reason: { code: 'patient-declined' } } } : {}) };
      const stored = await testApp.app.inject({
        method: 'POST',
        url: '/cds-services/patient-view/feedback',
        payload: { feedback: [{ card: card.uuid, ...item, outcomeTimestamp: '2026-11-23T12:00:00Z' }] },
      });
      expect(stored.statusCode).toBe(200);
    }
    await testApp.app.listen({ host: '127.0.0.1', port: 0 });
    baseUrl = `http://127.0.0.1:${(testApp.app.server.address() as AddressInfo).port}`;
    browser = await launchChromium();
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await testApp?.close();
  });

  it('shows the per-service and per-item tables and the chart from the API, without errors', async () => {
    const overview: Json = (await testApp.app.inject({ method: 'GET', url: '/admin/feedback', headers: { authorization: `Bearer ${viewerKey}` } })).json();
    const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
    const problems: string[] = [];
    await context.addInitScript({
      content: `
        document.addEventListener('securitypolicyviolation', (event) => console.error('CSP violation: ' + event.violatedDirective));
        if (location.origin === ${JSON.stringify(baseUrl)}) sessionStorage.setItem(${JSON.stringify(consoleKeyStorageName)}, ${JSON.stringify(viewerKey)});`,
    });
    const page = await context.newPage();
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') problems.push(`${message.type()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));

    await page.goto(`${baseUrl}/console/feedback`);
    await page.waitForSelector('main#main:not([aria-busy]) h1');
    expect(await page.locator('h1').first().textContent()).toBe('Feedback');
    expect(await page.locator('nav.main-nav a[aria-current="page"]').textContent()).toBe('Feedback');
    const totals = overview.totals;
    expect(await page.getByTestId('feedback-totals').textContent()).toBe(
      `${totals.cardsShown} cards shown, ${totals.cardsWithFeedback} with feedback; suggestions accepted ${Math.round(totals.acceptanceRate * 100)}% of ${totals.accepted + totals.overridden + totals.notChosen} answers.`,
    );
    expect(totals.cardsWithFeedback).toBe(3);

    const serviceRow = page.locator('table:has(caption:text("Feedback per service")) tbody tr');
    expect(await serviceRow.count()).toBe(overview.services.length);
    const patientView = serviceRow.filter({ hasText: 'patient-view' });
    expect(await patientView.locator('td').nth(2).textContent()).toBe('1');
    expect(await patientView.locator('td').nth(3).textContent()).toBe('2');
    expect(await patientView.locator('td').nth(5).textContent()).toBe('Patient declined (1)');

    const itemRows = page.locator('table:has(caption:text("Feedback per item")) tbody tr');
    expect(await itemRows.count()).toBe(overview.items.length);
    const accepted = overview.items.find((item: Json) => item.accepted === 1);
    const acceptedRow = itemRows.filter({ hasText: accepted.display }).first();
    expect(await acceptedRow.locator('td').nth(3).textContent()).toBe('1');
    expect(await acceptedRow.locator('td').nth(5).textContent()).toBe(String(accepted.overridden));

    // One bar pair per period: the accepted share, titled with its counts.
    const titles = await page.locator('svg.bar-chart rect.bar title').allTextContents();
    const week = overview.periods[0];
    expect(titles).toContain(`${week.period}: ${week.accepted} of ${week.accepted + week.overridden + week.notChosen} accepted`);

    await page.selectOption('#feedback-bucket', 'day');
    await eventually(async () => expect(page.url()).toContain('bucket=day'));
    await page.waitForSelector('main#main:not([aria-busy]) h1');
    await eventually(async () => expect(await page.locator('table.data-table th').first().textContent()).toBe('Day'));
    expect(problems).toEqual([]);
    await context.close();
  }, 120_000);
});
