import type { Server } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';

/** What shutdown needs of the app: fastify's close (stop listening, drain requests, run onClose), its server and log. */
export interface ClosableApp {
  close(): PromiseLike<unknown>;
  readonly server?: Pick<Server, 'closeIdleConnections'>;
  readonly log: Pick<FastifyBaseLogger, 'info' | 'error'>;
}

/** Where signals come from: `process`, or an emitter in a test. */
export interface SignalSource {
  on(signal: NodeJS.Signals, listener: () => void): unknown;
  off(signal: NodeJS.Signals, listener: () => void): unknown;
}

export interface GracefulShutdownOptions {
  readonly signals?: readonly NodeJS.Signals[];
  readonly signalSource?: SignalSource;
  /** How long in-flight requests and onClose hooks get before the process exits anyway, with code 1. */
  readonly forceExitAfterMs?: number;
  readonly exit?: (code: number) => void;
}

const idleSweepMs = 100;
const exitGraceMs = 1000;

/**
 * Sets the exit code and lets the process end by itself: pino writes asynchronously, and on process.exit() it
 * writes its buffer at once, ahead of a write still in flight (the last log lines came out swapped). Whatever
 * still holds the event loop gets `exitGraceMs`.
 */
function exitOnceIdle(code: number): void {
  process.exitCode = code;
  setTimeout(() => process.exit(code), exitGraceMs).unref();
}

/**
 * On the first of `signals` (SIGTERM, SIGINT), closes the app and exits: fastify stops accepting connections,
 * lets the requests in flight finish (closing their keep-alive connections once answered), then runs the
 * onClose hooks (the database closes there); exit code 0, or 1 when closing fails or outlasts
 * `forceExitAfterMs`. A repeated signal changes nothing. Returns a function that removes the handlers.
 */
export function installGracefulShutdown(app: ClosableApp, options: GracefulShutdownOptions = {}): () => void {
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  const source: SignalSource = options.signalSource ?? process;
  const exit = options.exit ?? exitOnceIdle;
  const forceExitAfterMs = options.forceExitAfterMs ?? 10000;
  let closing = false;
  let exited = false;

  const shutdown = (signal: NodeJS.Signals): void => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down: finishing in-flight requests');
    const finish = (code: number): void => {
      if (exited) return;
      exited = true;
      clearInterval(sweepIdle);
      clearTimeout(forceExit);
      exit(code);
    };
    // unref: the timer alone must not keep a process alive that has nothing else left to do.
    const forceExit = setTimeout(() => {
      app.log.error({ forceExitAfterMs }, 'shutdown did not finish in time: exiting anyway');
      finish(1);
    }, forceExitAfterMs);
    forceExit.unref();
    // fastify closes the connections idle at the signal; a keep-alive connection whose request was in flight
    // becomes idle only after its answer and would hold server.close() until the force exit. Sweep them.
    const sweepIdle = setInterval(() => app.server?.closeIdleConnections(), idleSweepMs);
    sweepIdle.unref();
    Promise.resolve(app.close()).then(
      () => {
        app.log.info({ signal }, 'shut down: requests finished, connections closed');
        finish(0);
      },
      (error: unknown) => {
        app.log.error({ err: error }, 'error while closing');
        finish(1);
      },
    );
  };

  const listeners = signals.map((signal) => [signal, () => shutdown(signal)] as const);
  for (const [signal, listener] of listeners) source.on(signal, listener);
  return () => {
    for (const [signal, listener] of listeners) source.off(signal, listener);
  };
}
