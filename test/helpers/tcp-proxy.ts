import net from 'node:net';

/** A TCP proxy on loopback that a test can cut and restore, to play a database going away and coming back. */
export class TcpProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly pairs = new Set<{ readonly client: net.Socket; readonly upstream: net.Socket | undefined }>();
  private silent = false;
  private cutArmed: (() => void) | undefined;
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  /** Listens (on the same port as before, after a cut), forwarding to the target. */
  async start(): Promise<void> {
    this.silent = false;
    const server = net.createServer((client) => {
      this.track(client);
      if (this.silent) {
        // Accepted, read, never answered: a frozen host or a network partition, not a refusal.
        client.resume();
        this.pairs.add({ client, upstream: undefined });
        return;
      }
      const upstream = net.connect(this.targetPort, this.targetHost);
      this.track(upstream);
      this.pairs.add({ client, upstream });
      client.pipe(upstream).pipe(client);
      client.on('data', () => {
        const done = this.cutArmed;
        this.cutArmed = undefined;
        // After pipe's own listener: this chunk is on its way to the server, and its answer will never come back.
        if (done) void this.cut().then(done);
      });
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  /**
   * Stops answering without refusing: open connections stay open but nothing more crosses them either way, and
   * new connections are accepted and then ignored. `cut()` then `start()` brings the database back.
   */
  blackHole(): void {
    this.silent = true;
    for (const { client, upstream } of this.pairs) {
      if (upstream === undefined) continue;
      client.unpipe(upstream);
      upstream.unpipe(client);
      // Keep reading, so the sender sees its writes accepted, and drop what arrives.
      client.resume();
      upstream.resume();
    }
  }

  /** Cuts (as `cut()`) the moment the next query leaves for the server: the query is in flight, its answer lost. */
  cutAtNextQuery(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.cutArmed = resolve;
    });
  }

  /** Refuses new connections and drops the open ones, as a crashed or restarting server would. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.cutArmed = undefined;
    for (const socket of this.sockets) socket.destroy();
    this.pairs.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  }
}
