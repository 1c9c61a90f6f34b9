/**
 * The app of the route scenario (`route.bench.ts`), in its own process so the load generator does
 * not share its event loop: one Nest HTTP app serving the same handler twice, `GET /plain/:id`
 * without a lock and `GET /locked/:id` under `@Lock('item:{{id}}')`, the way a user writes it.
 *
 * argv[2]: JSON {@link RouteAppConfig}. Sends `{ type: 'ready', port }`; closes the app and exits
 * on `{ type: 'stop' }`.
 */
import { Controller, Get, Module, Param, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { AddressInfo } from 'node:net';
import { Lock, RedisLockModule } from '../../dist/index.js';
import { nextParentMessage, sendToParent } from '../../test/support/worker-ipc.js';

export type Platform = 'express' | 'fastify';

export interface RouteAppConfig {
  url: string;
  platform: Platform;
}

/** The work both routes do: build a small answer. */
function answer(id: string): { id: string; ok: true } {
  return { id, ok: true };
}

@Controller()
class ItemsController {
  @Get('plain/:id')
  async plain(@Param('id') id: string) {
    return answer(id);
  }

  @Get('locked/:id')
  @Lock('item:{{id}}')
  async locked(@Param('id') id: string) {
    return answer(id);
  }
}

const config = JSON.parse(process.argv[2]) as RouteAppConfig;

@Module({
  imports: [RedisLockModule.forRoot({ redis: config.url, keyPrefix: 'bench:route:' })],
  controllers: [ItemsController],
})
class RouteAppModule {}

const adapter = config.platform === 'fastify' ? new FastifyAdapter() : new ExpressAdapter();
const app: INestApplication = await NestFactory.create(RouteAppModule, adapter, { logger: false });
await app.listen(0, '127.0.0.1');
const { port } = app.getHttpServer().address() as AddressInfo;
await sendToParent({ type: 'ready', port });
// Asked before and after each round: the CPU this process spent on it, whatever else the machine
// ran meanwhile.
process.on('message', (message: { type: string }) => {
  if (message.type === 'cpu') void sendToParent({ type: 'cpu', ...process.cpuUsage() });
});
await nextParentMessage((message) => (message as { type: string }).type === 'stop');
await app.close();
process.exit(0);
