/**
 * The Docker image is not built here (no engine), so its layout is checked from the Dockerfile itself: every
 * folder the running server reads (src/paths.ts) must be in the runtime stage, and what the build stage runs
 * must have its inputs copied in. A folder under src/ exists at runtime only as what `npm run build` puts in dist/.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import * as paths from '../src/paths.js';

interface Stage {
  readonly name: string | null;
  readonly workdir: string;
  /** In order: COPY (the absolute paths it fills, source stage if any) and RUN lines. */
  readonly steps: Array<{ kind: 'copy'; sources: string[]; destinations: string[]; from: string | null } | { kind: 'run'; command: string }>;
  readonly command: string[] | null;
}

/** The stages of a Dockerfile, with the instructions this check needs (no line continuations are used). */
function parseDockerfile(text: string): Stage[] {
  const stages: Array<{ name: string | null; workdir: string; steps: Stage['steps']; command: string[] | null }> = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [instruction = '', ...rest] = line.split(/\s+/);
    const argument = line.slice(instruction.length).trim();
    const stage = stages.at(-1);
    switch (instruction.toUpperCase()) {
      case 'FROM':
        stages.push({ name: /\bAS\s+(\S+)$/i.exec(argument)?.[1] ?? null, workdir: '/', steps: [], command: null });
        break;
      case 'WORKDIR':
        if (stage) stage.workdir = path.posix.resolve(stage.workdir, argument);
        break;
      case 'COPY': {
        if (!stage) break;
        const from = rest.find((word) => word.startsWith('--from='))?.slice('--from='.length) ?? null;
        const words = rest.filter((word) => !word.startsWith('--'));
        const sources = words.slice(0, -1);
        const target = words.at(-1) ?? '.';
        const destination = path.posix.resolve(stage.workdir, target);
        // `COPY a b ./` puts a and b in the folder; `COPY src ./src` makes ./src the copy of src.
        const destinations = sources.length > 1 || target.endsWith('/') ? sources.map((source) => path.posix.join(destination, path.posix.basename(source))) : [destination];
        stage.steps.push({ kind: 'copy', sources, destinations, from });
        break;
      }
      case 'RUN':
        stage?.steps.push({ kind: 'run', command: argument });
        break;
      case 'CMD':
        if (stage) stage.command = JSON.parse(argument) as string[];
        break;
      default:
        break;
    }
  }
  return stages;
}

/** Paths (relative to the workdir) that no COPY of `stage` before step `before` puts in place. */
function missingFromStage(stage: Stage, required: string[], before = stage.steps.length): string[] {
  const copied = stage.steps.slice(0, before).flatMap((step) => (step.kind === 'copy' ? step.destinations : []));
  return required.filter((relative) => {
    const wanted = path.posix.resolve(stage.workdir, relative);
    return !copied.some((destination) => wanted === destination || wanted.startsWith(`${destination}/`));
  });
}

const dockerfile = readFileSync(path.join(paths.projectRoot, 'Dockerfile'), 'utf8');
const packageJson = JSON.parse(readFileSync(path.join(paths.projectRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
const sourceFolder = path.join(paths.projectRoot, 'src');

/**
 * What the server started by the runtime stage's CMD reads, relative to the image's workdir: package.json (how
 * it finds its root) and every folder src/paths.ts names, a folder under src/ taken from the built tree.
 */
function runtimeRequirements(stage: Stage): string[] {
  const entry = stage.command?.find((word) => word.endsWith('.js'));
  expect(entry).toBe('dist/src/server.js');
  const builtSource = path.posix.dirname(entry!);
  const folders = Object.entries(paths)
    .filter(([name, value]) => name.endsWith('Directory') && typeof value === 'string')
    .map(([, value]) => value as string);
  expect(folders.length).toBeGreaterThanOrEqual(4);
  return [
    'package.json',
    ...folders.map((folder) => {
      const inSource = path.relative(sourceFolder, folder);
      if (!inSource.startsWith('..')) return path.posix.join(builtSource, ...inSource.split(path.sep));
      return path.relative(paths.projectRoot, folder).split(path.sep).join('/');
    }),
  ];
}

describe('the runtime image has every folder the server reads', () => {
  const stages = parseDockerfile(dockerfile);
  const runtime = stages.at(-1)!;
  const build = stages.find((stage) => stage.name === 'build')!;
  const scratch = mkdtempSync(path.join(tmpdir(), 'ccds-console-build-'));

  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('finds the console next to the compiled server, not in src/', () => {
    expect(paths.consoleAssetsDirectory).toBe(path.join(sourceFolder, 'console', 'public'));
    expect(existsSync(path.join(paths.consoleAssetsDirectory, 'index.html'))).toBe(true);
    expect(runtimeRequirements(runtime)).toContain('dist/src/console/public');
  });

  it('copies each of them into the runtime stage', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(missingFromStage(runtime, runtimeRequirements(runtime))).toEqual([]);
    // dist comes from the build stage, where `npm run build` made it.
    const dist = runtime.steps.find((step) => step.kind === 'copy' && step.destinations.includes(path.posix.resolve(runtime.workdir, 'dist')));
    expect(dist).toMatchObject({ from: 'build', sources: [`${build.workdir}/dist`] });
  });

  it('starts the server as `npm start` does, with the same heap bound (docs/benchmarks.md, 2026-12-07 afternoon)', () => {
    const start = (packageJson.scripts.start ?? '').split(/\s+/);
    expect(start).toContain('dist/src/server.js');
    expect(start.some((word) => /^--max-old-space-size=\d+$/.test(word))).toBe(true);
    expect(runtime.command).toEqual(start);
  });

  it('notices a runtime stage that leaves one out (the check can fail)', () => {
    const withoutDist = parseDockerfile(dockerfile.replace(/^COPY --from=build \S+\/dist .*$/m, '')).at(-1)!;
    expect(missingFromStage(withoutDist, runtimeRequirements(withoutDist))).toContain('dist/src/console/public');
    const withoutCdsHooks = parseDockerfile(dockerfile.replace(/^COPY cds-hooks .*$/m, '')).at(-1)!;
    expect(missingFromStage(withoutCdsHooks, runtimeRequirements(withoutCdsHooks))).toEqual(['cds-hooks']);
  });

  it('gives the build stage what `npm run build` reads before it runs', () => {
    const buildStep = build.steps.findIndex((step) => step.kind === 'run' && /\bnpm run build\b/.test(step.command));
    expect(buildStep).toBeGreaterThan(0);
    const script = packageJson.scripts.build ?? '';
    const tsconfig = JSON.parse(readFileSync(path.join(paths.projectRoot, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
    const nodeScripts = [...script.matchAll(/\bnode\s+(\S+\.mjs)\b/g)].map((match) => match[1]!);
    expect(nodeScripts).toContain('scripts/copy-console-assets.mjs');
    const inputs = ['package.json', 'tsconfig.json', 'tsconfig.build.json', ...tsconfig.include, ...nodeScripts];
    expect(missingFromStage(build, inputs, buildStep)).toEqual([]);
  });

  it('builds the console into dist/src/console/public: every served file, and not its tsconfig', () => {
    execFileSync(process.execPath, [path.join(paths.projectRoot, 'scripts', 'copy-console-assets.mjs'), scratch]);
    const list = (root: string): string[] =>
      readdirSync(root, { recursive: true, withFileTypes: true })
        .filter((entry) => entry.isFile())
        .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)))
        .sort();
    const built = list(path.join(scratch, 'src', 'console', 'public'));
    const source = list(paths.consoleAssetsDirectory);
    expect(built).toEqual(source.filter((file) => file !== 'tsconfig.json'));
    expect(built).toEqual(expect.arrayContaining(['index.html', 'style.css', path.join('js', 'main.js')]));
  });
});
