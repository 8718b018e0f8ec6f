import path from 'node:path';
import cliProgress from 'cli-progress';
import type { IngestProgress } from '../ingest/ingest.js';

/** How the ingest shows its progress on stderr, and how its log lines get there without breaking the bar. */
export interface IngestProgressDisplay {
  readonly update: (progress: IngestProgress) => void;
  readonly log: (message: string) => void;
  readonly stop: () => void;
}

const rateWindowMs = 20_000;
const linesEveryMs = 2000;

/** Amount per second over the last 20 s, from samples of a growing counter. */
class RateMeter {
  private readonly samples: Array<{ at: number; value: number }> = [];

  add(at: number, value: number): void {
    this.samples.push({ at, value });
    while (this.samples.length > 2 && at - this.samples[1]!.at >= rateWindowMs) this.samples.shift();
  }

  perSecond(): number | null {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.at - first.at < 1000) return null;
    return ((last.value - first.value) * 1000) / (last.at - first.at);
  }

  reset(): void {
    this.samples.length = 0;
  }
}

function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '…';
  const whole = Math.max(0, Math.round(seconds));
  if (whole < 60) return `${whole}s`;
  if (whole < 3600) return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, '0')}s`;
  return `${Math.floor(whole / 3600)}h${String(Math.floor((whole % 3600) / 60)).padStart(2, '0')}m`;
}

const count = (value: number) => Math.round(value).toLocaleString('en-US');

interface Figures {
  readonly percentage: string;
  readonly detail: string;
  readonly rate: string;
  readonly eta: string;
}

/**
 * A progress bar with rate and ETA on a terminal (cli-progress), or a line every two seconds (and one per
 * file) when stderr is a file or a pipe. Reading shows the input's bytes (MB/s); loading shows the staged
 * input converted and stored, with the encounters stored per second.
 */
export function createIngestProgressDisplay(stream: NodeJS.WriteStream = process.stderr): IngestProgressDisplay {
  const interactive = stream.isTTY === true;
  const bars = interactive
    ? new cliProgress.MultiBar(
        {
          stream,
          format: '{phase} [{bar}] {percentage}% | {detail} | {rate} | ETA {eta}',
          barsize: 30,
          hideCursor: true,
          clearOnComplete: false,
          stopOnComplete: false,
          fps: 5,
        },
        cliProgress.Presets.shades_classic,
      )
    : null;
  let bar: cliProgress.SingleBar | null = null;
  let phase: IngestProgress['phase'] | null = null;
  let lastFile: string | undefined;
  let lastLine = 0;
  const bytes = new RateMeter();
  const encounters = new RateMeter();

  const write = (message: string) => {
    if (bars) bars.log(`${message}\n`);
    else stream.write(`${message}\n`);
  };

  const figures = (progress: IngestProgress, now: number): Figures => {
    bytes.add(now, progress.done);
    const bytesPerSecond = bytes.perSecond();
    const eta = bytesPerSecond && bytesPerSecond > 0 ? (progress.total - progress.done) / bytesPerSecond : null;
    const percentage = progress.total > 0 ? ((100 * progress.done) / progress.total).toFixed(0) : '0';
    if (progress.phase === 'reading') {
      return {
        percentage,
        detail: `file ${progress.filesRead + 1}/${progress.filesTotal} ${path.basename(progress.file ?? '')}, ${count(progress.resourcesRead)} resources`,
        rate: bytesPerSecond === null ? '… MB/s' : `${(bytesPerSecond / 1e6).toFixed(1)} MB/s`,
        eta: formatDuration(eta),
      };
    }
    encounters.add(now, progress.encountersLoaded);
    const encountersPerSecond = encounters.perSecond();
    return {
      percentage,
      detail: `batch ${progress.batchesLoaded}/${progress.batchesTotal}, ${count(progress.encountersLoaded)} encounters`,
      rate: encountersPerSecond === null ? '… encounters/s' : `${count(encountersPerSecond)} encounters/s`,
      eta: formatDuration(eta),
    };
  };

  const update = (progress: IngestProgress) => {
    const now = Date.now();
    if (progress.phase !== phase) {
      bar?.update(bar.getTotal());
      bar = null;
      bytes.reset();
      encounters.reset();
      phase = progress.phase;
      if (progress.phase === 'panels') write(`deriving lab panels from the cohort`);
      if (progress.resumed && progress.phase === 'reading') write('resuming an interrupted ingest: what it staged and stored is kept');
    }
    if (progress.phase !== 'reading' && progress.phase !== 'loading') return;
    const current = figures(progress, now);
    if (bars) {
      const payload = { phase: progress.phase.padEnd(7), detail: current.detail, rate: current.rate, eta: current.eta };
      if (!bar) bar = bars.create(Math.max(progress.total, 1), progress.done, payload);
      else bar.update(progress.done, payload);
      return;
    }
    const newFile = progress.phase === 'reading' && progress.file !== lastFile;
    if (!newFile && now - lastLine < linesEveryMs) return;
    lastLine = now;
    lastFile = progress.file ?? lastFile;
    if (progress.phase === 'reading') {
      write(`reading [${progress.filesRead + 1}/${progress.filesTotal}] ${path.basename(progress.file ?? '')} (${count(progress.resourcesRead)} resources so far) ${current.percentage}% ${current.rate} ETA ${current.eta}`);
    } else {
      write(`storing: ${current.detail} ${current.percentage}% ${current.rate} ETA ${current.eta}`);
    }
  };

  return {
    update,
    log: write,
    stop: () => {
      bars?.stop();
    },
  };
}
