/**
 * `npm run check:readme`: type-checks every ```ts block of README.md against the built package.
 *
 * Each block is written as its own module into .tmp/readme/ and compiled with `tsc --noEmit`
 * (strict, decorators as a Nest app has them). Inside the repository, `import ... from
 * 'nestjs-redis-lock'` resolves to the package itself through its `exports`, so the blocks are
 * checked against dist/ as a user would import it: run `npm run build` first. A block must be
 * complete (its imports, and the members it uses); errors are reported at their README line.
 * Exits 1 on any error.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT = join(ROOT, '.tmp', 'readme');
const TSC = createRequire(import.meta.url).resolve('typescript/bin/tsc');

if (!existsSync(join(ROOT, 'dist', 'index.d.ts'))) {
  console.error('check-readme: dist/ is missing; run npm run build first');
  process.exit(1);
}

/** Every ```ts block: the README line of its first code line, and its text. */
function tsBlocks(markdown) {
  const blocks = [];
  let open;
  markdown.split('\n').forEach((line, index) => {
    if (open) {
      if (/^```\s*$/.test(line)) {
        blocks.push(open);
        open = undefined;
      } else open.lines.push(line);
    } else if (/^```(ts|typescript)\s*$/.test(line)) {
      open = { firstLine: index + 2, lines: [] };
    }
  });
  return blocks;
}

const blocks = tsBlocks(readFileSync(join(ROOT, 'README.md'), 'utf8'));
rmSync(OUT, { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });
const files = blocks.map(({ firstLine, lines }) => {
  const file = `line-${firstLine}.ts`;
  writeFileSync(join(OUT, file), `${lines.join('\n')}\n`);
  return file;
});
writeFileSync(
  join(OUT, 'tsconfig.json'),
  JSON.stringify(
    {
      compilerOptions: {
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        // Each block is a module of its own, even one without imports.
        moduleDetection: 'force',
        target: 'ES2022',
        lib: ['ES2022', 'DOM'],
        strict: true,
        experimentalDecorators: true,
        emitDecoratorMetadata: true,
        skipLibCheck: true,
        noEmit: true,
        // Jest's globals: the README's example spec uses them.
        types: ['node', 'jest'],
      },
      files,
    },
    null,
    2,
  ),
);

const result = spawnSync(
  process.execPath,
  [TSC, '-p', join(OUT, 'tsconfig.json'), '--pretty', 'false'],
  {
    cwd: OUT,
    encoding: 'utf8',
  },
);
// "line-65.ts(3,10): error TS..." becomes "README.md:67:10: error TS...".
const output = `${result.stdout}${result.stderr}`.replace(
  /^line-(\d+)\.ts\((\d+),(\d+)\)/gm,
  (_match, first, line, column) => `README.md:${Number(first) + Number(line) - 1}:${column}`,
);
if (result.status !== 0) {
  process.stderr.write(output);
  console.error(
    `check-readme: the README's TypeScript blocks do not compile (${blocks.length} checked)`,
  );
  process.exit(1);
}
console.log(`check-readme: ${blocks.length} TypeScript blocks of README.md compile`);
