import { spawnSync } from 'node:child_process';

/**
 * Runs once before all test files. Servers are started per file (see `redis-server.ts`); this
 * only checks that the binaries the harness needs are there, so a missing one fails with a fix
 * instead of a timeout in every file.
 *
 * @throws Error when `redis-server` is not on PATH.
 */
export default async function globalSetup(): Promise<void> {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    const why = probe.error?.message ?? probe.stderr;
    throw new Error(
      `redis-server is needed by the tests but could not be run (${why.trim()}): ` +
        'install redis-server (apt-get install redis-server)',
    );
  }
}
