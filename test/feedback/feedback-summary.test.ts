import { describe, expect, it } from '@jest/globals';
import { periodOf, summarizeFeedback } from '../../src/feedback/feedback-summary.js';
import { findFeedbackProblems, type IssuedCardOffer } from '../../src/feedback/validate-feedback.js';

const system = 'https://cohort-cds.example.org/override-reason';
const declined = { system, code: 'patient-declined', display: 'Patient declined' };
const done = { system, code: 'already-done', display: 'Already done elsewhere' };

describe('feedback against the card it names', () => {
  const issued = new Map<string, IssuedCardOffer>([
    ['card-a', { suggestionUuids: ['s1', 's2'], overrideReasons: [declined, done] }],
    ['card-b', { suggestionUuids: [], overrideReasons: [] }],
  ]);

  it('accepts the card’s own suggestions and offered reasons, with or without the system', () => {
    expect(
      findFeedbackProblems(
        [
          { card: 'card-a', acceptedSuggestions: [{ id: 's2' }] },
          { card: 'card-a', overrideReason: { reason: { code: 'patient-declined' } } },
          { card: 'card-a', overrideReason: { reason: declined, userComment: 'free text' } },
          { card: 'card-b', overrideReason: { userComment: 'a comment needs no offered reason' } },
          { card: 'unknown-card', acceptedSuggestions: [{ id: 'x' }] },
        ],
        issued,
      ),
    ).toEqual([]);
  });

  it('names each entry that picks what the card did not offer', () => {
    const problems = findFeedbackProblems(
      [
        { card: 'card-a', acceptedSuggestions: [{ id: 's1' }, { id: 's9' }] },
        { card: 'card-a', overrideReason: { reason: { system: 'urn:other', code: 'patient-declined' } } },
        { card: 'card-b', overrideReason: { reason: { code: 'patient-declined' } } },
      ],
      issued,
    );
    expect(problems.map((problem) => problem.path)).toEqual([
      'feedback.0.acceptedSuggestions.1.id',
      'feedback.1.overrideReason.reason',
      'feedback.2.overrideReason.reason',
    ]);
    expect(problems[1]!.message).toContain('patient-declined, already-done');
    expect(problems[2]!.message).toContain('offered no override reasons');
  });
});

describe('feedback overview', () => {
  it('starts weeks on Monday and days at midnight UTC', () => {
    expect(periodOf(new Date('2026-11-23T23:59:00Z'), 'week')).toBe('2026-11-23'); // a Monday
    expect(periodOf(new Date('2026-11-29T23:59:00Z'), 'week')).toBe('2026-11-23'); // the Sunday after
    expect(periodOf(new Date('2026-11-30T00:00:00Z'), 'week')).toBe('2026-11-30');
    expect(periodOf(new Date('2026-11-25T23:30:00-05:00'), 'day')).toBe('2026-11-26');
  });

  it('counts item outcomes, card outcomes and reasons per item, service and period', () => {
    const card = (serviceId: string, issuedAt: string, feedback: Array<{ outcome: 'accepted' | 'overridden'; ids?: string[]; reason?: typeof done }>) => ({
      serviceId,
      complaintConcept: 'abdominal-pain',
      issuedAt: new Date(issuedAt),
      suggestionUuids: ['s1', 's2'],
      itemCodes: ['lab:lipase', 'order:ct'],
      itemDisplays: ['Lipase', 'CT abdomen'],
      feedback: feedback.map((entry) => ({ outcome: entry.outcome, acceptedSuggestionIds: entry.ids ?? [], reason: entry.reason ?? null })),
    });
    const summary = summarizeFeedback({
      bucket: 'week',
      shownItems: [
        { serviceId: 'patient-view', complaintConcept: 'abdominal-pain', itemCode: 'lab:lipase', display: 'Lipase', shown: 5 },
        { serviceId: 'order-select', complaintConcept: 'abdominal-pain', itemCode: 'lab:lipase', display: 'Lipase', shown: 2 },
        { serviceId: 'patient-view', complaintConcept: 'abdominal-pain', itemCode: 'order:ct', display: 'CT abdomen', shown: 5 },
      ],
      issuedPeriods: [
        { serviceId: 'patient-view', period: '2026-11-16', cards: 2, items: 4 },
        { serviceId: 'patient-view', period: '2026-11-23', cards: 3, items: 6 },
        { serviceId: 'order-select', period: '2026-11-23', cards: 2, items: 2 },
      ],
      cards: [
        card('patient-view', '2026-11-17T10:00:00Z', [{ outcome: 'accepted', ids: ['s1'] }]),
        card('patient-view', '2026-11-24T10:00:00Z', [{ outcome: 'overridden', reason: done }, { outcome: 'overridden', reason: done }]),
        card('order-select', '2026-11-24T11:00:00Z', [{ outcome: 'overridden', reason: declined }, { outcome: 'accepted', ids: ['s2'] }]),
      ],
    });
    const lipase = summary.items.find((item) => item.itemCode === 'lab:lipase')!;
    expect(lipase).toMatchObject({ shown: 7, accepted: 1, overridden: 2, notChosen: 0, display: 'Lipase' });
    expect(lipase.acceptanceRate).toBeCloseTo(1 / 3, 10);
    // A retried override counts its reason once.
    expect(lipase.overrideReasons.map((reason) => [reason.code, reason.count])).toEqual([
      ['already-done', 1],
      ['patient-declined', 1],
    ]);
    const ct = summary.items.find((item) => item.itemCode === 'order:ct')!;
    expect(ct).toMatchObject({ shown: 5, accepted: 1, overridden: 1, notChosen: 1 });
    const patientView = summary.services.find((service) => service.serviceId === 'patient-view')!;
    expect(patientView).toMatchObject({ cardsShown: 5, cardsAccepted: 1, cardsOverridden: 1, itemsShown: 10, accepted: 1, overridden: 2, notChosen: 1 });
    // A card accepted after an override counts as accepted.
    expect(summary.services.find((service) => service.serviceId === 'order-select')).toMatchObject({ cardsAccepted: 1, cardsOverridden: 0 });
    expect(summary.periods.map((period) => [period.period, period.serviceId, period.cardsShown, period.accepted])).toEqual([
      ['2026-11-16', 'patient-view', 2, 1],
      ['2026-11-23', 'order-select', 2, 1],
      ['2026-11-23', 'patient-view', 3, 0],
    ]);
    expect(summary.totals).toMatchObject({ cardsShown: 7, cardsWithFeedback: 3, itemsShown: 12, accepted: 2, overridden: 3, notChosen: 1 });
  });
});
