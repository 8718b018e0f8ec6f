import Fastify from 'fastify';

/** The ceiling: a bare fastify JSON endpoint on the same machine, in the same run. */
const app = Fastify({ logger: false });
app.post('/bare', async () => ({ cards: [] }));
const address = await app.listen({ port: 0, host: '127.0.0.1' });
process.stdout.write(`listening ${address}\n`);
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
