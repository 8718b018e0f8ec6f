// npm ci refuses a lock file that lacks an entry for any optional dependency, even one for another platform.
// The registry mirror used here serves only Linux builds of native packages, so `npm install` leaves those
// entries out. This adds them back (version only, optional): npm ci then accepts the lock and skips them.
// Run after any `npm install` that rewrites package-lock.json: node scripts/complete-lockfile.mjs
import { readFileSync, writeFileSync } from 'node:fs';

const path = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(path, 'utf8'));
let added = 0;
for (const entry of Object.values(lock.packages)) {
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const key = `node_modules/${name}`;
    if (lock.packages[key]) continue;
    lock.packages[key] = { version: version.replace(/^[\^~=]/, ''), optional: true, ...(entry.dev ? { dev: true } : {}) };
    added += 1;
  }
}
writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`added ${added} optional platform entries`);
