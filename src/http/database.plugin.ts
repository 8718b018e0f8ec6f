import fastifyPlugin from 'fastify-plugin';
import type { DatabaseHandle } from '../db/connection.js';

declare module 'fastify' {
  interface FastifyInstance {
    database: DatabaseHandle;
  }
}

export interface DatabasePluginOptions {
  readonly database: DatabaseHandle;
  /** Close the database when the app closes (the server's; tests often share one across apps). */
  readonly closeOnShutdown: boolean;
}

/** Makes the open database available as `app.database` and closes it with the app when asked to. */
export const databasePlugin = fastifyPlugin<DatabasePluginOptions>(
  async (app, options) => {
    app.decorate('database', options.database);
    if (options.closeOnShutdown) {
      app.addHook('onClose', async () => {
        await options.database.close();
        app.log.info('database closed');
      });
    }
  },
  { name: 'database', fastify: '5.x' },
);
