/**
 * A Redis URL that cannot be parsed (a password with an unencoded `#` or `/`) fails startup with
 * an error that says what to fix, and neither the error nor any log line shows the URL.
 */
import { inspect } from 'node:util';
import { Module, type LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { RedisLockModule } from '../../lib/index.js';

/** Every line any logger call writes, with its arguments (errors with their stacks). */
class CapturingLogger implements LoggerService {
  readonly lines: string[] = [];
  private capture = (...args: unknown[]) => {
    this.lines.push(args.map((arg) => (typeof arg === 'string' ? arg : inspect(arg))).join(' '));
  };
  log = this.capture;
  error = this.capture;
  warn = this.capture;
  debug = this.capture;
  verbose = this.capture;
  fatal = this.capture;
}

const SECRET = 's3cr3t';

describe('a Redis URL that cannot be parsed', () => {
  it.each([
    { problem: 'an unencoded # in the password', url: `redis://:${SECRET}#x@127.0.0.1:1/0` },
    { problem: 'an unencoded / in the password', url: `redis://:${SECRET}/x@127.0.0.1:1` },
    { problem: 'a user and an unencoded #', url: `redis://app:${SECRET}#x@127.0.0.1:1` },
    { problem: 'a malformed percent-escape', url: `redis://:${SECRET}%zz@127.0.0.1:1` },
  ])('with $problem fails startup saying what to fix, never showing the URL', async ({ url }) => {
    const logger = new CapturingLogger();
    @Module({ imports: [RedisLockModule.forRoot({ redis: url })] })
    class AppModule {}

    let error: unknown;
    try {
      const app = await NestFactory.createApplicationContext(AppModule, {
        logger,
        abortOnError: false,
      });
      await app.close();
    } catch (caught) {
      error = caught;
    }

    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toContain('Redis URL could not be parsed');
    expect((error as Error).message).toContain('Percent-encode');
    const shown = [inspect(error), ...logger.lines].join('\n');
    expect(shown).not.toContain(SECRET);
    expect(shown).not.toContain('redis://');
    // Nest did report the failure: the check above looked at real log lines.
    expect(logger.lines.join('\n')).toContain('Redis URL could not be parsed');
  });
});
