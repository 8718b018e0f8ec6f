import { spawn } from 'node:child_process';
import autocannon from 'autocannon';
import { buildHookBodies } from './dist/bench/synthetic-cohort.js';
const bodies = await buildHookBodies('/tmp/cohort-cds-bench/synthetic-100000-seed1', 12000, 1);
const child = spawn(process.execPath, ['--cpu-prof', '--cpu-prof-dir=/tmp/prof', 'dist/src/server.js'], { env: { ...process.env, DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/cohort_bench_100000_seed1', PORT: '3998', HOST: '127.0.0.1', LOG_LEVEL: 'warn', DEMO_COHORT: 'false', RATE_LIMIT_PER_MINUTE: '0' }, stdio: ['ignore', 'pipe', 'inherit'] });
await new Promise((r) => child.stdout.on('data', (d) => /http:/.test(String(d)) && r()));
await new Promise((r) => setTimeout(r, 6000));
let next = 0;
const result = await autocannon({ url: 'http://127.0.0.1:3998/cds-services/order-select', method: 'POST', headers: { 'content-type': 'application/json' }, connections: 10, duration: Number(process.env.SECS ?? 15),
  requests: [{ setupRequest: (req) => ({ ...req, body: bodies.orderSelect[next++ % bodies.orderSelect.length] }) }] });
console.log('req/s', result.requests.average, 'p50', result.latency.p50, 'p99', result.latency.p99, 'non2xx', result.non2xx);
child.kill('SIGINT');
await new Promise((r) => child.on('exit', r));
