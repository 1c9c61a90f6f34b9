import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { redactUrl, sampleConfig } from './app.config.js';
import { AppModule } from './app.module.js';
import { startTracing, traceRequests } from './telemetry/tracing.js';

/** Starts one instance of the sample app. Run several with different PORT and INSTANCE values. */
async function bootstrap(): Promise<void> {
  const logger = new Logger('Bootstrap');
  const { instance, port, redisUrl, keyPrefix } = sampleConfig;

  // OTEL_TRACE=tree: print each request's trace (the lock's spans appear once a provider is set).
  const tracing = process.env.OTEL_TRACE === 'tree';
  if (tracing) startTracing();
  const app = await NestFactory.create(AppModule);
  if (tracing) traceRequests(app);
  // SIGTERM/SIGINT run the shutdown hooks: the report timer stops and held locks are released.
  app.enableShutdownHooks();
  await app.listen(port);

  const where = `redis ${redactUrl(redisUrl)}, keys "${keyPrefix}*"`;
  logger.log(`instance ${instance} listening on port ${port} (${where})`);
}

bootstrap().catch((error: unknown) => {
  new Logger('Bootstrap').error(
    `instance ${sampleConfig.instance} failed to start`,
    error instanceof Error ? error.stack : String(error),
  );
  process.exit(1);
});
