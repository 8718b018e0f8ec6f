import { chromium, type Browser } from 'playwright-core';

/** Where the console keeps the API key in the browser (src/console/public/js/api.js). */
export const consoleKeyStorageName = 'cohort-cds.console.api-key';

/**
 * Debian's chromium, headless, as CI can run it: no sandbox (root in a container), no GPU, and none of the
 * background calls to Google's services, which the CI network refuses. playwright-core downloads no browser.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Retries an assertion until it passes or time is up: the console draws after its API calls answer. */
export async function eventually(assertion: () => Promise<void>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await assertion();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
