// Drives hooks and feedback through a load balancer (docs/scaling.md, "Checked with two instances"): each hook
// is followed by feedback on its first card, which the balancer may send to the other instance. Prints the
// statuses; which instance answered each call is in the balancer's log.
//   node --import ./test/helpers/run-typescript.mjs deploy/check-two-instances.ts http://127.0.0.1:18080 200
import { randomUUID } from 'node:crypto';
import { prefetchedRequest } from '../test/helpers/cds-hooks-examples.js';

const base = process.argv[2] ?? 'http://127.0.0.1:8080';
const hooks = Number(process.argv[3] ?? 40);
const statuses: Record<string, number> = {};
const feedbackStatuses: Record<string, number> = {};
let cards = 0;
for (let call = 0; call < hooks; call += 1) {
  const request = prefetchedRequest('order-select', {
    patient: { gender: 'female', birthDate: '1962-03-01' },
    chiefComplaint: 'ABD PAIN, N/V',
    hookInstance: randomUUID(),
  });
  request.context.draftOrders = { resourceType: 'Bundle', type: 'collection', entry: [] };
  request.context.selections = [];
  const response = await fetch(`${base}/cds-services/order-select`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request) });
  statuses[response.status] = (statuses[response.status] ?? 0) + 1;
  const body = response.status === 200 ? ((await response.json()) as { cards: Array<{ uuid: string }> }) : { cards: [] };
  cards += body.cards.length;
  const first = body.cards[0];
  if (first === undefined) continue;
  const feedback = await fetch(`${base}/cds-services/order-select/feedback`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ feedback: [{ card: first.uuid, outcome: 'overridden', outcomeTimestamp: new Date().toISOString() }] }),
  });
  feedbackStatuses[feedback.status] = (feedbackStatuses[feedback.status] ?? 0) + 1;
}
process.stdout.write(`${JSON.stringify({ hooks, statuses, cards, feedback: feedbackStatuses })}\n`);
