import { EventEmitter } from 'node:events';
import { describe, expect, it, jest } from '@jest/globals';
import { installGracefulShutdown, type ClosableApp } from '../../src/http/graceful-shutdown.js';

/** A stand-in for the fastify app: close() resolves, rejects or hangs as the test says; logs are recorded. */
function fakeApp(close: () => Promise<unknown>) {
  const messages: string[] = [];
  const record = (...args: unknown[]) => void messages.push(String(args.at(-1)));
  const app = {
    close: jest.fn(close),
    server: { closeIdleConnections: jest.fn() },
    log: { info: record, error: record } as unknown as ClosableApp['log'],
  } satisfies ClosableApp;
  return { app, messages };
}

/** Resolves with the first exit code the module asks for. */
function exitRecorder() {
  let exit: (code: number) => void = () => undefined;
  const exited = new Promise<number>((resolve) => (exit = resolve));
  return { exit: jest.fn((code: number) => exit(code)), exited };
}

describe('installGracefulShutdown', () => {
  it('closes the app on SIGTERM and exits 0 once it is closed; a second signal does nothing more', async () => {
    const signals = new EventEmitter();
    let finishClose: () => void = () => undefined;
    const { app, messages } = fakeApp(() => new Promise<void>((resolve) => (finishClose = resolve)));
    const { exit, exited } = exitRecorder();
    installGracefulShutdown(app, { signalSource: signals, exit });

    signals.emit('SIGTERM');
    signals.emit('SIGINT');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(app.close).toHaveBeenCalledTimes(1);
    expect(exit).not.toHaveBeenCalled();

    finishClose();
    expect(await exited).toBe(0);
    expect(exit).toHaveBeenCalledTimes(1);
    expect(messages).toEqual(['shutting down: finishing in-flight requests', 'shut down: requests finished, connections closed']);
  });

  it('closes keep-alive connections that become idle while it waits for the requests in flight', async () => {
    const signals = new EventEmitter();
    const { app } = fakeApp(() => new Promise((resolve) => setTimeout(resolve, 350)));
    const { exit, exited } = exitRecorder();
    installGracefulShutdown(app, { signalSource: signals, exit });
    signals.emit('SIGTERM');
    expect(await exited).toBe(0);
    expect(app.server.closeIdleConnections.mock.calls.length).toBeGreaterThanOrEqual(2);
  });

  it('exits 1 when closing fails', async () => {
    const signals = new EventEmitter();
    const { app, messages } = fakeApp(() => Promise.reject(new Error('pool would not end')));
    const { exit, exited } = exitRecorder();
    installGracefulShutdown(app, { signalSource: signals, exit });
    signals.emit('SIGINT');
    expect(await exited).toBe(1);
    expect(messages).toContain('error while closing');
  });

  it('exits 1 when closing outlasts the force-exit timeout, and only once when it finishes after all', async () => {
    const signals = new EventEmitter();
    const { app, messages } = fakeApp(() => new Promise((resolve) => setTimeout(resolve, 100)));
    const { exit, exited } = exitRecorder();
    installGracefulShutdown(app, { signalSource: signals, exit, forceExitAfterMs: 50 });
    signals.emit('SIGTERM');
    expect(await exited).toBe(1);
    expect(messages).toContain('shutdown did not finish in time: exiting anyway');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(exit.mock.calls).toEqual([[1]]);
  });

  it('listens to the signals it is given only, and removes its handlers when asked', () => {
    const signals = new EventEmitter();
    const { app } = fakeApp(() => Promise.resolve());
    const uninstall = installGracefulShutdown(app, { signalSource: signals, signals: ['SIGTERM'], exit: jest.fn() });
    expect(signals.listenerCount('SIGTERM')).toBe(1);
    expect(signals.listenerCount('SIGINT')).toBe(0);
    uninstall();
    expect(signals.listenerCount('SIGTERM')).toBe(0);
    signals.emit('SIGTERM');
    expect(app.close).not.toHaveBeenCalled();
  });
});
