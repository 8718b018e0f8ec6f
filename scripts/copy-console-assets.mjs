// Copies the console's static files (src/console/public) next to the compiled server, into
// <out>/src/console/public (out: dist, or the folder given), because the runtime image ships dist and not src.
// tsc emits only what it compiles; these files are served as they are. Run by `npm run build`.
import { cpSync, existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const source = path.join(projectRoot, 'src', 'console', 'public');
const out = path.resolve(projectRoot, process.argv[2] ?? 'dist');
const target = path.join(out, 'src', 'console', 'public');

if (!existsSync(path.join(source, 'index.html'))) throw new Error(`no console at ${source}`);
// A file deleted from the console must not linger in the build.
rmSync(target, { recursive: true, force: true });
// tsconfig.json only type-checks the modules; the static route would refuse it anyway.
cpSync(source, target, { recursive: true, filter: (file) => path.basename(file) !== 'tsconfig.json' });
