import cors from '@fastify/cors';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Config } from './config.js';
import type { DatabaseHandle } from './db/connection.js';
import { databasePlugin } from './http/database.plugin.js';
import { registerErrorHandler } from './http/error-handler.js';
import { healthRoutes } from './http/health.routes.js';

/** What the app is given rather than makes: so tests can pass their own database, clock and logger. */
export interface AppDependencies {
  readonly database: DatabaseHandle;
  /** Close the database when the app closes. */
  readonly closeDatabase?: boolean;
  readonly logger?: FastifyServerOptions['logger'];
  readonly now?: () => Date;
}

/** Builds the fastify instance with every plugin and route; never listens (server.ts does). */
export async function buildApp(config: Config, dependencies: AppDependencies): Promise<FastifyInstance> {
  const app = Fastify({
    logger: dependencies.logger ?? false,
    bodyLimit: config.bodyLimitBytes,
    return503OnClosing: true,
    // Deeply nested or huge JSON is refused before it reaches a handler.
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    requestTimeout: 30000,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  registerErrorHandler(app);

  await app.register(databasePlugin, { database: dependencies.database, closeOnShutdown: dependencies.closeDatabase ?? false });
  await app.register(cors, {
    origin: config.corsOrigins === '*' ? '*' : [...config.corsOrigins],
    methods: ['GET', 'POST', 'OPTIONS'],
    allowedHeaders: ['Authorization', 'Content-Type'],
  });
  await app.register(healthRoutes);
  return app;
}
