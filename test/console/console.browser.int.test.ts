/**
 * The console in a real browser: Debian's chromium driven by playwright-core (nothing is downloaded), against
 * the app listening on 127.0.0.1:0 over the real MIMIC demo. Every page is watched for console errors, uncaught
 * exceptions and CSP violations.
 *
 * With CONSOLE_SCREENSHOTS=<folder> (relative to the project) the main pages are also saved as PNGs there; the
 * README's come from `CONSOLE_SCREENSHOTS=docs/screenshots` with this file run alone.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { createApiKey } from '../../src/db/api-key.repository.js';
import type { EvaluationResult } from '../../src/evaluate/result.js';
import { projectRoot } from '../../src/paths.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { consoleKeyStorageName, eventually, launchChromium } from '../helpers/browser.js';

/** Where card links point: the public name of the service, as the EHR sees it (routed to the local server). */
const publicBaseUrl = 'https://cds.example.org';
const screenshotFolder = process.env.CONSOLE_SCREENSHOTS ? path.resolve(projectRoot, process.env.CONSOLE_SCREENSHOTS) : null;

/** The element's text (trimmed) becomes `expected`, or matches it when a RegExp. */
async function expectText(locator: Locator, expected: string | RegExp): Promise<void> {
  await eventually(async () => {
    const text = ((await locator.first().textContent()) ?? '').trim();
    if (typeof expected === 'string') expect(text).toBe(expected);
    else expect(text).toMatch(expected);
  });
}

/** The element's text comes to contain `expected`. */
async function expectContains(locator: Locator, expected: string): Promise<void> {
  await eventually(async () => expect((await locator.first().textContent()) ?? '').toContain(expected));
}

async function expectCount(locator: Locator, count: number): Promise<void> {
  await eventually(async () => expect(await locator.count()).toBe(count));
}

/** The workup chart's bars as the console should draw them from a stored result: k-major, then measure, then method. */
function workupBars(result: EvaluationResult) {
  const digits = (value: number | null) => (value === null ? '–' : value.toFixed(3));
  return result.options.k.flatMap((k) =>
    (['precision', 'recall', 'weightedRecall'] as const).flatMap((measure) =>
      result.methods.map((method) => {
        const estimate = method.workup.atK.find((entry) => entry.k === k)![measure];
        const label = `${measure === 'weightedRecall' ? 'weighted recall' : measure}@${k}`;
        const interval = estimate.lower === null || estimate.upper === null ? '' : ` (${digits(estimate.lower)}–${digits(estimate.upper)})`;
        return { ...estimate, title: `${method.label}, ${label}: ${digits(estimate.value)}${interval}` };
      }),
    ),
  );
}

/** The first bar chart's marks as drawn: the y-scale from its axis (0) and top grid line (1), bars and whiskers. */
async function readWorkupChart(page: Page) {
  // Browser-side code as text: this project's type-check has no DOM types.
  return (await page.evaluate(`(() => {
    const svg = document.querySelector('svg.bar-chart');
    const ticks = [...svg.querySelectorAll('g.tick line')].map((line) => Number(line.getAttribute('y1')));
    return {
      scale: ticks[0] - ticks[ticks.length - 1],
      groups: [...svg.querySelectorAll('text.group-label')].map((text) => text.textContent),
      bars: [...svg.querySelectorAll('rect.bar')].map((rect) => ({ height: Number(rect.getAttribute('height')), title: rect.querySelector('title').textContent })),
      whiskers: svg.querySelectorAll('g.whisker').length,
      barFills: [...new Set([...svg.querySelectorAll('rect.bar')].map((rect) => getComputedStyle(rect).fill))],
      swatches: [...svg.closest('figure').querySelectorAll('.legend .swatch')].map((swatch) => getComputedStyle(swatch).backgroundColor),
    };
  })()`)) as { scale: number; groups: string[]; bars: Array<{ height: number; title: string }>; whiskers: number; barFills: string[]; swatches: string[] };
}

describe('the console in a real browser', () => {
  let testApp: TestApp;
  let baseUrl: string;
  let browser: Browser;
  let informaticistKey: string;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    testApp = await buildTestApp({ rateLimitPerMinute: 0, publicBaseUrl });
    informaticistKey = (await createApiKey(testApp.database.db, { name: 'ada', role: 'informaticist', createdBy: 'test' })).key;
    await testApp.app.listen({ host: '127.0.0.1', port: 0 });
    baseUrl = `http://127.0.0.1:${(testApp.app.server.address() as AddressInfo).port}`;
    browser = await launchChromium();
    if (screenshotFolder) mkdirSync(screenshotFolder, { recursive: true });
    // Ingesting the demo takes about 15 s alone; on a machine shared with other work it has taken over a minute.
  }, 180_000);

  afterAll(async () => {
    for (const context of contexts) await context.close().catch(() => undefined);
    await browser?.close();
    await testApp?.close();
  });

  /**
   * A fresh browser context (its own sessionStorage) whose pages report every problem into `problems`. With a
   * key, the console finds it in sessionStorage as after a login. Requests to the public base URL are served by
   * the local server, so a card's absolute link opens as the EHR would open it.
   */
  async function openPage(options: { key?: string; allowedErrors?: RegExp[] } = {}) {
    const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, deviceScaleFactor: 1 });
    contexts.push(context);
    const problems: string[] = [];
    await context.route(`${publicBaseUrl}/**`, async (route) => {
      const url = new URL(route.request().url());
      const response = await route.fetch({ url: `${baseUrl}${url.pathname}${url.search}` });
      await route.fulfill({ response });
    });
    // Browser-side code as text: this project's type-check has no DOM types.
    await context.addInitScript({
      content: `
        document.addEventListener('securitypolicyviolation', (event) => {
          console.error('CSP violation: ' + event.violatedDirective + ' blocked ' + event.blockedURI);
        });
        window.alert = () => console.error('alert() was called: injected script ran');`,
    });
    if (options.key) {
      // Init scripts run in every document of the context, including the about:blank a new page starts on and
      // the explanation page on the public origin, where this origin's storage is out of reach: only here.
      await context.addInitScript({
        content: `if (location.origin === ${JSON.stringify(baseUrl)}) sessionStorage.setItem(${JSON.stringify(consoleKeyStorageName)}, ${JSON.stringify(options.key)});`,
      });
    }
    const watch = (page: Page) => {
      page.on('console', (message) => {
        if (message.type() !== 'error' && message.type() !== 'warning') return;
        if (options.allowedErrors?.some((pattern) => pattern.test(message.text()))) return;
        problems.push(`${message.type()}: ${message.text()} (${page.url()})`);
      });
      page.on('pageerror', (error) => problems.push(`uncaught: ${error.message} (${page.url()})`));
      page.on('dialog', (dialog) => {
        problems.push(`dialog: ${dialog.message()}`);
        void dialog.dismiss();
      });
    };
    context.on('page', watch);
    const page = await context.newPage();
    return { context, page, problems };
  }

  /** Waits until the console page has drawn (its main element is no longer busy). */
  async function settled(page: Page) {
    await page.waitForSelector('main#main:not([aria-busy]) h1');
  }

  /**
   * The whole page from its top (a sticky header is drawn mid-page otherwise), without the toasts of the moment.
   * (Not playwright's `style` option: it injects an inline <style>, which the console's CSP rightly refuses.)
   */
  async function screenshot(page: Page, name: string, options: { fullPage?: boolean } = {}) {
    if (!screenshotFolder) return;
    await page.evaluate(`document.fonts.ready.then(() => {
      for (const toast of document.querySelectorAll('.toast')) toast.remove();
      window.scrollTo(0, 0);
    })`);
    await page.screenshot({ path: path.join(screenshotFolder, `${name}.png`), fullPage: options.fullPage ?? true });
  }

  it('signs in with a key checked by the service, and refuses a wrong one', async () => {
    const { page, problems } = await openPage({ allowedErrors: [/status of 401/] });
    await page.goto(`${baseUrl}/console/cohort`);
    await page.waitForSelector('#api-key');
    await screenshot(page, 'login');
    await page.fill('#api-key', `ccds_${'x'.repeat(43)}`);
    await page.click('button[type=submit]');
    await expectText(page.locator('#login-error'), 'That key was not accepted.');
    expect(await page.evaluate(`sessionStorage.getItem(${JSON.stringify(consoleKeyStorageName)})`)).toBeNull();

    await page.fill('#api-key', informaticistKey);
    await page.click('button[type=submit]');
    // Back to the page first asked for, with the active version in the header.
    await page.waitForURL(`${baseUrl}/console/cohort`);
    await settled(page);
    await expectText(page.locator('[data-testid=active-version]'), 'v1');
    await expectContains(page.locator('.who'), 'ada');
    // A reload keeps the session (sessionStorage), signing out forgets it.
    await page.reload();
    await settled(page);
    await page.click('text=Sign out');
    await page.waitForSelector('#api-key');
    expect(await page.evaluate(`sessionStorage.getItem(${JSON.stringify(consoleKeyStorageName)})`)).toBeNull();
    expect(problems).toEqual([]);
  });

  it('creates a draft, shows a validation error next to its field, saves the fix, activates it without a backtest only with a reason, and rolls back', async () => {
    // A hostile note from another key: it must show as text, not run.
    const hostileNote = '<img src=x onerror=alert(1)><script>alert(2)</script>';
    const { page, problems } = await openPage({ key: informaticistKey });
    await page.goto(`${baseUrl}/console/rules`);
    await settled(page);
    await screenshot(page, 'rules');
    await page.click('[data-testid=new-draft]');
    await page.waitForURL(/\/console\/rules\/2$/);
    await settled(page);

    await page.fill('#field-minItemShare', '2');
    await page.fill('#field-ageWindowYears', '15');
    await page.click('[data-testid=validate]');
    const error = page.locator('[data-error-for=minItemShare]');
    await expectText(error, /1/);
    expect(await page.locator('[data-field=minItemShare]').getAttribute('class')).toMatch(/invalid/);
    await expectText(page.locator('[data-error-for=ageWindowYears]'), '');
    await expectContains(page.locator('[data-testid=form-status]'), '1 problem');
    await expectText(page.locator('[data-field=ageWindowYears] .field-diff'), 'Active v1: 10');
    await screenshot(page, 'rules-draft-invalid');

    await page.fill('#field-minItemShare', '0.15');
    await page.fill('#field-note', hostileNote);
    await page.click('[data-testid=validate]');
    await expectText(error, '');
    await expectContains(page.locator('[data-testid=form-status]'), 'Valid');
    await page.click('[data-testid=save]');
    await expectText(page.locator('[data-testid=form-status]'), 'Saved v2.');
    const saved = await testApp.app.inject({ method: 'GET', url: '/admin/rules/2', headers: { authorization: `Bearer ${informaticistKey}` } });
    expect(saved.json()).toMatchObject({ status: 'draft', note: hostileNote, rules: { minItemShare: 0.15, ageWindowYears: 15 } });

    // Never backtested: Activate is off and says why; forcing it takes a reason of some length.
    await expectContains(page.locator('[data-testid=activation-status]'), 'Activate is off: Draft v2 has no completed backtest yet');
    expect(await page.locator('[data-testid=activate]').isDisabled()).toBe(true);
    expect(await page.locator('[data-testid=activate]').getAttribute('title')).toBe('Draft v2 has no completed backtest yet');
    expect(await page.locator('[data-testid=backtest-this]').getAttribute('href')).toBe('/console/backtest?version=2');
    await page.click('[data-testid=force-panel] summary');
    await page.fill('[data-testid=force-reason]', 'urgent');
    expect(await page.locator('[data-testid=force-activate]').isDisabled()).toBe(true);
    const reason = 'Committee asked for it live today; backtest to follow';
    await page.fill('[data-testid=force-reason]', reason);
    await page.click('[data-testid=force-activate]');
    await expectText(page.locator('[data-testid=active-version]'), 'v2');
    const forced = await testApp.app.inject({ method: 'GET', url: '/admin/audit?action=rules.force-activate', headers: { authorization: `Bearer ${informaticistKey}` } });
    expect(forced.json().events[0]).toMatchObject({ actor: 'ada', target: 'rules/2', details: { reason } });
    await page.goto(`${baseUrl}/console/rules`);
    await settled(page);
    await expectContains(page.locator('table.versions'), hostileNote);
    // v1 was active before: going back needs no backtest (none has run yet).
    await page.click('[data-testid=rollback-1]');
    await page.click('[data-testid=rollback-1-confirm]');
    await expectText(page.locator('[data-testid=active-version]'), 'v1');
    await expectContains(page.locator('table.versions tr.row-active'), 'v1');
    expect(await page.locator('main img, main script').count()).toBe(0);
    expect(problems).toEqual([]);
  });

  it('runs a backtest on the demo cohort showing its progress, follows it to its charts, compares two versions, and activates the backtested one', async () => {
    const { page, problems } = await openPage({ key: informaticistKey });
    await page.goto(`${baseUrl}/console/backtest?version=1`);
    await settled(page);
    // Many resamples, so that the run lasts a few of the page's one-second polls.
    await page.fill('#backtest-resamples', '30000');
    // Every progress text the page shows, in order, and whether the result was already there (browser-side code
    // as text: this project's type-check has no DOM types). The console navigates in place, so this survives.
    await page.evaluate(`(() => {
      window.progressSeen = [];
      new MutationObserver(() => {
        const text = document.querySelector('[data-testid=backtest-progress-text]')?.textContent;
        const bar = document.querySelector('progress[data-testid=backtest-progress]');
        if (text && window.progressSeen.at(-1)?.text !== text) {
          window.progressSeen.push({ text, value: bar?.getAttribute('value') ?? null, max: bar?.getAttribute('max') ?? null, resultShown: document.querySelector('[data-testid=backtest-result]') !== null });
        }
      }).observe(document.body, { childList: true, subtree: true, characterData: true });
    })()`);
    await page.click('[data-testid=start-backtest]');
    await page.waitForURL(/\/console\/backtest\/\d+$/);
    const firstRun = page.url().split('/').pop()!;
    const result = page.locator('[data-testid=backtest-result]');
    await result.waitFor({ timeout: 90_000 });
    const progressSeen = (await page.evaluate('window.progressSeen')) as Array<{ text: string; value: string | null; max: string | null; resultShown: boolean }>;
    // Shown while the run went on, before the result, and moving: at least two different states.
    expect(progressSeen.length).toBeGreaterThanOrEqual(2);
    expect(progressSeen.every((seen) => !seen.resultShown)).toBe(true);
    expect(await page.locator('[data-testid=backtest-progress]').count()).toBe(0);
    for (const seen of progressSeen) {
      expect(seen.text).toMatch(/^(Waiting to start|Loading the cohort|Predicting held-out encounters|Bootstrapping the intervals|Done)( – (\d+) of (\d+) \((\d+)%\))?$/);
      const counted = / – (\d+) of (\d+) \((\d+)%\)$/.exec(seen.text);
      if (counted) {
        const [done, total, percentShown] = counted.slice(1).map(Number) as [number, number, number];
        expect(percentShown).toBe(Math.floor((100 * done) / total));
        expect({ value: seen.value, max: seen.max }).toEqual({ value: String(done), max: String(total) });
      }
    }
    expect(progressSeen.some((seen) => /%\)$/.test(seen.text))).toBe(true);
    await expectCount(page.locator('svg.bar-chart'), 2);
    await expectCount(page.locator('svg.calibration'), 2);

    // The charts draw the API's figures: each workup bar's height on the axis's scale is its value, and each
    // calibration point is one decile row of the stored result.
    const stored = (await testApp.app.inject({ method: 'GET', url: `/admin/evaluations/${firstRun}`, headers: { authorization: `Bearer ${informaticistKey}` } })).json() as {
      status: string;
      result: EvaluationResult;
    };
    expect(stored.status).toBe('succeeded');
    const expectedBars = workupBars(stored.result);
    expect(expectedBars.filter((bar) => bar.value !== null).length).toBeGreaterThan(0);
    const drawn = await readWorkupChart(page);
    expect(drawn.groups).toEqual(stored.result.options.k.flatMap((k) => [`precision@${k}`, `recall@${k}`, `w-recall@${k}`]));
    expect(drawn.bars.map((bar) => bar.title)).toEqual(expectedBars.filter((bar) => bar.value !== null).map((bar) => bar.title));
    const drawnValues = drawn.bars.map((bar) => bar.height / drawn.scale);
    const expectedValues = expectedBars.flatMap((bar) => (bar.value === null ? [] : [bar.value]));
    drawnValues.forEach((value, index) => expect(value).toBeCloseTo(expectedValues[index]!, 2));
    expect(drawn.whiskers).toBe(expectedBars.filter((bar) => bar.value !== null && bar.lower !== null && bar.upper !== null).length);
    const calibrationPoints = await page.locator('svg.calibration').first().locator('circle.point').count();
    expect(calibrationPoints).toBe(stored.result.methods.reduce((sum, method) => sum + method.admission.calibration.length, 0));
    expect(calibrationPoints).toBeGreaterThan(0);
    // Every method has its own colour, in the bars and in the legend (an uncoloured series is drawn black).
    expect(new Set(drawn.barFills).size).toBe(stored.result.methods.length);
    expect(drawn.barFills).not.toContain('rgb(0, 0, 0)');
    expect(drawn.swatches).toHaveLength(stored.result.methods.length);
    expect(new Set(drawn.swatches).size).toBe(stored.result.methods.length);
    expect(drawn.swatches).not.toContain('rgba(0, 0, 0, 0)');
    const withCard = stored.result.coverage.withCard.value;
    await expectText(page.locator('[data-testid=coverage]'), withCard === null ? '–' : `${(withCard * 100).toFixed(0)}%`);
    await expectContains(result, 'Most frequent items for the chief complaint');
    await screenshot(page, 'backtest');

    // A second run, of a new draft v3 (the wider age band of v2), then both side by side.
    const v1Rules = (await testApp.app.inject({ method: 'GET', url: '/admin/rules/1', headers: { authorization: `Bearer ${informaticistKey}` } })).json().effectiveRules;
    const v3 = await testApp.app.inject({
      method: 'POST',
      url: '/admin/rules',
      headers: { authorization: `Bearer ${informaticistKey}` },
      payload: { rules: { ...v1Rules, ageWindowYears: 15 }, note: 'Age ± 15 years', basedOn: 1 },
    });
    expect(v3.json().version).toBe(3);
    await page.goto(`${baseUrl}/console/backtest?version=3`);
    await settled(page);
    await page.fill('#backtest-resamples', '300');
    await page.click('[data-testid=start-backtest]');
    await page.waitForURL(/\/console\/backtest\/\d+$/);
    const secondRun = page.url().split('/').pop()!;
    await result.waitFor({ timeout: 45_000 });
    await page.goto(`${baseUrl}/console/backtest`);
    await settled(page);
    await page.check(`input[data-run="${firstRun}"]`);
    await page.check(`input[data-run="${secondRun}"]`);
    await page.click('[data-testid=compare]');
    await page.waitForURL(new RegExp(`/console/backtest/compare/${firstRun}/${secondRun}$`));
    await settled(page);
    await expectText(page.locator('h1'), `Rules v1 (#${firstRun}) against v3 (#${secondRun})`);
    expect(await page.locator('svg.bar-chart rect.compare-1').first().count()).toBeGreaterThan(0);
    await expectCount(page.locator('.side-by-side [data-testid=backtest-result]'), 2);
    await screenshot(page, 'backtest-compare', { fullPage: false });

    // Backtested: v3's Activate is on, naming the run; then back to v1.
    await page.goto(`${baseUrl}/console/rules/3`);
    await settled(page);
    await expectText(page.locator('[data-testid=activation-status]'), `Backtested (run #${secondRun}): ready to activate.`);
    expect(await page.locator('[data-testid=force-panel]').isHidden()).toBe(true);
    await page.click('[data-testid=activate]');
    await page.click('[data-testid=activate-confirm]');
    await expectText(page.locator('[data-testid=active-version]'), 'v3');
    await page.goto(`${baseUrl}/console/rules`);
    await settled(page);
    await page.click('[data-testid=rollback-1]');
    await page.click('[data-testid=rollback-1-confirm]');
    await expectText(page.locator('[data-testid=active-version]'), 'v1');
    expect(problems).toEqual([]);
    // Two backtests of the demo: about 10 s on an idle machine, more when it is shared.
  }, 180_000);

  it('tries a patient, with ICD-10 autocomplete, and shows the cards as an EHR would; the card link explains the cohort', async () => {
    const { context, page, problems } = await openPage({ key: informaticistKey });
    await page.goto(`${baseUrl}/console/try`);
    await settled(page);
    await page.fill('#try-age', '64');
    await page.selectOption('#try-sex', 'female');
    await page.fill('#try-complaint', 'ABD PAIN, N/V');
    await page.locator('#try-icd10').pressSequentially('R10.9');
    const option = page.locator('#icd10-options [data-code=R109]');
    await option.waitFor();
    await option.dispatchEvent('mousedown');
    await expectText(page.locator('.chips .chip code'), 'R109');
    await page.selectOption('#try-acuity', '3');
    await page.click('[data-testid=show-cards]');

    const cohortSize = page.locator('[data-testid=cohort-size]');
    await expectText(cohortSize, /^\d+$/);
    const size = Number(await cohortSize.textContent());
    expect(size).toBeGreaterThanOrEqual(11);
    await expectText(page.locator('[data-testid=relaxation]'), /\S/);
    const cards = page.locator('[data-testid=cards] .cds-card');
    expect(await cards.count()).toBeGreaterThanOrEqual(2);
    const workup = cards.first();
    await expectContains(workup.locator('.cds-card-summary'), `Workup in ${size} similar visits`);
    await expectText(workup.locator('.indicator-badge'), 'Info');
    expect(await workup.locator('.cds-card-detail table.md-table').isVisible()).toBe(true);
    await expectContains(workup.locator('.cds-card-source'), `${size} similar ED visits · rules v1`);
    const suggestion = workup.locator('.suggestion').first();
    await expectText(suggestion, /^Order /);
    await suggestion.click();
    await eventually(async () => expect(await suggestion.getAttribute('aria-pressed')).toBe('true'));
    const link = workup.locator('a.cds-card-link');
    expect(await link.getAttribute('href')).toMatch(new RegExp(`^${publicBaseUrl}/explain/[\\w-]+\\.[\\w-]+$`));
    await screenshot(page, 'try-a-patient');

    // The card's absolute link, opened as the clinician would (a new tab, no login).
    const [explanation] = await Promise.all([context.waitForEvent('page'), link.click()]);
    await explanation.waitForLoadState();
    await expectText(explanation.locator('h1'), 'How this cohort was chosen');
    await expectContains(explanation.locator('.lead'), 'Workup card');
    await expectContains(explanation.locator('.lead'), 'rules version v1');
    await expectText(explanation.locator('.big-number'), String(size));
    await expectContains(explanation.locator('#criteria'), 'abdominal pain');
    await expectContains(explanation.locator('#workup tbody tr').first(), `of ${size}`);
    await expectContains(explanation.locator('#prognosis'), 'Admitted');
    await screenshot(explanation, 'explanation');

    // The same link with its signature altered is refused.
    const href = (await link.getAttribute('href'))!;
    // The token is `payload.signature`: alter the signature's first character (not the host name's dots).
    const tamperedUrl = new URL(href);
    tamperedUrl.pathname = tamperedUrl.pathname.replace(/\.(.)([^.]*)$/, (_match, first: string, rest: string) => `.${first === 'A' ? 'B' : 'A'}${rest}`);
    const tampered = tamperedUrl.href;
    expect(tampered).not.toBe(href);
    expect(tamperedUrl.origin).toBe(publicBaseUrl);
    const refusedProblems: string[] = [];
    const refused = await context.newPage();
    refused.removeAllListeners('console');
    refused.on('console', (message) => {
      if (message.type() === 'error' && !/status of 404/.test(message.text())) refusedProblems.push(message.text());
    });
    const response = await refused.goto(tampered);
    expect(response?.status()).toBe(404);
    await expectText(refused.locator('h1'), 'This link is not valid');
    expect((await refused.locator('body').textContent()) ?? '').not.toContain('similar prior ED visits');
    expect(refusedProblems).toEqual([]);
    expect(problems.filter((problem) => !problem.includes(tampered))).toEqual([]);
  });

  it('shows the cohort with small cells suppressed, the unmapped complaints, and the activity', async () => {
    const { page, problems } = await openPage({ key: informaticistKey });
    await page.goto(`${baseUrl}/console/cohort`);
    await settled(page);
    await expectText(page.locator('[data-testid=cohort-table] td.suppressed').first(), '< 11');
    await expectText(page.locator('[data-testid=cohort-table] tbody th').first(), 'Abdominal pain');
    await screenshot(page, 'cohort');

    await page.goto(`${baseUrl}/console/complaints`);
    await settled(page);
    const firstPhrase = page.locator('table.unmapped tbody tr').first();
    const phrase = (await firstPhrase.locator('.phrase').textContent())!;
    await screenshot(page, 'complaints');
    await firstPhrase.locator('select').selectOption({ label: 'Abnormal labs' });
    await firstPhrase.locator('button', { hasText: 'Map' }).click();
    await expectContains(page.locator('.toast'), `“${phrase}” now means Abnormal labs`);
    await settled(page);
    await expectCount(page.locator('table.unmapped .phrase', { hasText: new RegExp(`^${phrase}$`) }), 0);

    await page.goto(`${baseUrl}/console/activity`);
    await settled(page);
    const audit = page.locator('table.audit');
    await expectContains(audit, 'complaint.map');
    await expectContains(audit, 'rules.activate');
    await expectContains(audit, 'ada');
    await screenshot(page, 'activity');
    expect(problems).toEqual([]);
  });
});
