/**
 * `npm run build`: the two builds the package ships, from the same sources.
 *
 * - dist/: ES modules (NodeNext), what `import` resolves to.
 * - dist/cjs/: CommonJS, what `require` resolves to. CommonJS apps load it without require(esm),
 *   so Jest's CommonJS runtime (ts-jest's default setup) and TypeScript below 5.8 with
 *   `module: node16` can use the package. Its own package.json marks its .js and .d.ts files as
 *   CommonJS.
 *
 * Both copies may end up in one process (a CommonJS app with an ES module dependency that imports
 * the package); docs/protocol.md ("Two copies in one process") says why that is safe.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TSC = createRequire(import.meta.url).resolve('typescript/bin/tsc');

/** Runs tsc on one project; rejects with its exit code. */
function tsc(project) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [TSC, '-p', project], { cwd: ROOT, stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`tsc -p ${project} exited with ${code}`)),
    );
  });
}

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
// Side by side: each tsc is mostly single-threaded, and the CI machines have two cores.
await Promise.all([tsc('tsconfig.build.json'), tsc('tsconfig.build-cjs.json')]);
mkdirSync(new URL('../dist/cjs', import.meta.url), { recursive: true });
writeFileSync(
  new URL('../dist/cjs/package.json', import.meta.url),
  `${JSON.stringify({ type: 'commonjs' }, null, 2)}\n`,
);
