import { describe, expect, it } from '@jest/globals';
import type { CohortPlan } from '../../src/cohort/matching.js';
import { createExplanationLinks, explanationLinkReuseMs, maximumRememberedLinks } from '../../src/http/explanation-link.js';

const ttlMs = 7 * 24 * 3600_000;

function plan(ageMin: number): CohortPlan {
  return {
    criteria: {
      sex: 'female',
      ageMin,
      ageMax: ageMin + 9,
      acuity: null,
      complaintConcept: 'chest-pain',
      otherComplaintConcepts: [],
      icd10: null,
      sites: null,
      lookback: null,
    },
    relaxation: [],
  };
}

/** The expiry (ms) a link's token carries. */
function expiryOf(url: string): number {
  const body = new URL(url).pathname.replace('/explain/', '').split('.')[0]!;
  return (JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as { exp: number }).exp * 1000;
}

describe('explanation links', () => {
  const start = Date.parse('2026-12-07T10:00:00Z');
  let clock = start;
  const links = createExplanationLinks({ secret: 'a secret for this test only', baseUrl: 'https://cds.example.org/', ttlMs, now: () => new Date(clock) });
  const subject = (ageMin: number) => ({ serviceId: 'order-select', kind: 'workup' as const, rulesVersion: 3, plan: plan(ageMin) });

  it('hands out the same signed link for the same cohort within the reuse window, and it verifies', () => {
    clock = start;
    const first = links.link(subject(40));
    clock = start + explanationLinkReuseMs - 1;
    const again = links.link(subject(40));
    expect(again.url).toBe(first.url);
    expect(first.url.startsWith('https://cds.example.org/explain/')).toBe(true);
    const verified = links.codec.verify(new URL(first.url).pathname.replace('/explain/', ''), new Date(clock));
    expect(verified.ok && verified.payload.criteria.ageMin).toBe(40);
    // Valid for the TTL less at most the reuse window, never longer.
    expect(expiryOf(again.url) - clock).toBeLessThanOrEqual(ttlMs);
    expect(expiryOf(again.url) - clock).toBeGreaterThan(ttlMs - explanationLinkReuseMs - 1000);
  });

  it('signs a new link once the window has passed, and one per cohort', () => {
    clock = start;
    const first = links.link(subject(50));
    expect(links.link(subject(60)).url).not.toBe(first.url);
    clock = start + explanationLinkReuseMs;
    const later = links.link(subject(50));
    expect(later.url).not.toBe(first.url);
    expect(expiryOf(later.url)).toBe(Math.floor((clock + ttlMs) / 1000) * 1000);
  });

  it('remembers a bounded number of links: the oldest is signed afresh once more cohorts came after it', () => {
    const bounded = createExplanationLinks({ secret: 'a secret for this test only', baseUrl: 'https://cds.example.org', ttlMs, now: () => new Date(clock) });
    clock = start;
    const oldest = bounded.link(subject(1000));
    for (let age = 2000; age < 2000 + maximumRememberedLinks; age += 1) bounded.link(subject(age));
    const newest = bounded.link(subject(2000 + maximumRememberedLinks));
    // One second later, inside the reuse window: a remembered link comes back as it was, a forgotten one is signed again.
    clock = start + 1000;
    expect(bounded.link(subject(2000 + maximumRememberedLinks)).url).toBe(newest.url);
    expect(bounded.link(subject(1000)).url).not.toBe(oldest.url);
  });

  it('never reuses a link that would outlive the TTL when the clock went back', () => {
    clock = start + 30_000;
    const first = links.link(subject(70));
    clock = start;
    const after = links.link(subject(70));
    expect(after.url).not.toBe(first.url);
    expect(expiryOf(after.url) - clock).toBeLessThanOrEqual(ttlMs);
  });
});
