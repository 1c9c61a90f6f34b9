/**
 * `@Lock(key, { mode })` on controllers and providers: readers overlap, a writer answers 423 to a
 * reader's request, `onNotAcquired: 'skip'`, and the checks at class definition and at startup.
 */
import {
  Controller,
  Get,
  Inject,
  Injectable,
  Module,
  Param,
  Put,
  type INestApplication,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import request from 'supertest';
import {
  Lock,
  LockModeError,
  LockNotAcquiredError,
  LockTemplateError,
  RedisLockModule,
  type RedisLockModuleOptions,
} from '../../lib/index.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { Gate } from './fixtures/gate.js';

@Injectable()
class Docs {
  constructor(@Inject(Gate) private readonly gate: Gate) {}

  @Lock('doc:{{id}}', { mode: 'read' })
  async read(id: string, step: string): Promise<string> {
    await this.gate.pass(step);
    return `read ${id}`;
  }

  @Lock('doc:{{id}}', { mode: 'write' })
  async write(id: string, step: string): Promise<string> {
    await this.gate.pass(step);
    return `wrote ${id}`;
  }

  @Lock('doc:{{id}}', { mode: 'read', onNotAcquired: 'skip' })
  async peek(id: string): Promise<string> {
    return `peeked ${id}`;
  }
}

@Controller('docs')
class DocsController {
  constructor(@Inject(Gate) private readonly gate: Gate) {}

  @Get(':id/:step')
  @Lock('doc:{{id}}', { mode: 'read' })
  async get(@Param('id') id: string, @Param('step') step: string) {
    await this.gate.pass(step);
    return { read: id };
  }

  @Put(':id/:step')
  @Lock('doc:{{id}}', { mode: 'write' })
  async put(@Param('id') id: string, @Param('step') step: string) {
    await this.gate.pass(step);
    return { wrote: id };
  }
}

async function createApp(options: RedisLockModuleOptions): Promise<INestApplication> {
  @Module({
    imports: [RedisLockModule.forRoot(options)],
    controllers: [DocsController],
    providers: [Gate, Docs],
  })
  class DocsModule {}

  const app = await NestFactory.create(DocsModule, new ExpressAdapter(), {
    logger: false,
    abortOnError: false,
  });
  await app.listen(0, '127.0.0.1');
  return app;
}

let redis: RedisServer;
let app: INestApplication | undefined;

beforeAll(async () => {
  redis = await startRedis();
});
afterEach(async () => {
  app?.get(Gate).reset();
  await app?.close();
  app = undefined;
});
afterAll(() => stopAllRedis());

describe("@Lock(key, { mode: 'read' | 'write' })", () => {
  it('lets two readers of a controller in at once, and answers 423 to a reader while a writer is in', async () => {
    app = await createApp({ redis: redis.url, waitTimeout: 0 });
    const gate = app.get(Gate);
    const http = request(app.getHttpServer());
    gate.hold('r1');
    gate.hold('r2');
    const r1 = http.get('/docs/1/r1').then((res) => res);
    await gate.arrived('r1');
    const r2 = http.get('/docs/1/r2').then((res) => res);
    await gate.arrived('r2');
    // Both readers are inside now; a writer is refused.
    await http.put('/docs/1/w0').expect(423);
    gate.release('r1');
    gate.release('r2');
    expect((await r1).status).toBe(200);
    expect((await r2).status).toBe(200);

    gate.hold('w1');
    const w1 = http.put('/docs/1/w1').then((res) => res);
    await gate.arrived('w1');
    await http.get('/docs/1/r3').expect(423);
    gate.release('w1');
    expect((await w1).status).toBe(200);
    await http.get('/docs/1/r4').expect(200);
  });

  it('excludes a provider reader while a writer holds; skip returns undefined', async () => {
    app = await createApp({ redis: redis.url, waitTimeout: 0 });
    const gate = app.get(Gate);
    const docs = app.get(Docs);
    gate.hold('w');
    const writing = docs.write('2', 'w');
    await gate.arrived('w');
    await expect(docs.read('2', 'r')).rejects.toBeInstanceOf(LockNotAcquiredError);
    await expect(docs.peek('2')).resolves.toBeUndefined();
    gate.release('w');
    await expect(writing).resolves.toBe('wrote 2');
    await expect(docs.peek('2')).resolves.toBe('peeked 2');
  });

  it('refuses a mode with several keys, or an unknown mode, where the class is defined', () => {
    expect(() => {
      class Bad {
        @Lock(['a', 'b'], { mode: 'read' })
        run() {}
      }
      return Bad;
    }).toThrow(LockTemplateError);
    expect(() => {
      class Bad {
        @Lock('a', { mode: 'shared' as never })
        run() {}
      }
      return Bad;
    }).toThrow(/Bad\.run\(\).*mode/s);
  });

  it('stops the startup of a Redlock app with a mode, naming the method', async () => {
    const masters = [redis, await startRedis(), await startRedis()];
    const clients = masters.map((master) => master.url);
    const error = await createApp({ redlock: { clients } }).then(
      (started) => {
        app = started;
        return undefined;
      },
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(LockModeError);
    expect((error as Error).message).toMatch(
      /Docs(Controller)?\.\w+\(\).*Redlock is not supported/,
    );
  });
});
