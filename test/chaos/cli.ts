/**
 * The chaos run's command line (`npm run chaos -- ...`):
 * --minutes N        search time per seed (default 1)
 * --seed S           one seed (default: random, always printed)
 * --seeds a,b,c      several seeds, one after the other
 * --modes a,b        a subset of default,fair,multi,reentrant,nest,redlock
 * --round-seconds N  contention time of one round (default 15)
 * --processes N      worker processes per round (default 3)
 * --shrink-minutes N time budget for shrinking a failing schedule (default 3)
 * --no-shrink        report the first failing round as it is
 * --no-faults        rounds without faults: the workload alone, a baseline that must pass
 * --replay JSON      run one round as given (a shrunk schedule printed by an earlier run)
 * --path P           with --seed: replay the round fast-check generated at that path
 * --ci               the fixed seeds (one round each) plus one random seed, no shrinking, on
 *                    the default workload (the fixed seeds' paths name rounds of it)
 * --json             print a JSON summary as the last line
 *
 * @example
 * const options = parseCli(['--minutes', '2', '--seed', '42']);
 */
import { MODES, type Mode } from './records.js';
import type { Round } from './plan.js';

export interface CliOptions {
  minutes: number;
  seeds: number[];
  modes: Mode[];
  roundSeconds: number;
  processes: number;
  shrinkMinutes: number;
  shrink: boolean;
  faults: boolean;
  replay?: Round;
  path?: string;
  ci: boolean;
  json: boolean;
}

export function parseCli(argv: string[]): CliOptions {
  const options: CliOptions = {
    minutes: 1,
    seeds: [],
    modes: [...MODES],
    roundSeconds: 15,
    processes: 3,
    shrinkMinutes: 3,
    shrink: true,
    faults: true,
    ci: false,
    json: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      const next = argv[++i];
      if (next === undefined) throw new Error(`${flag} needs a value`);
      return next;
    };
    const number = () => {
      const n = Number(value());
      if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag} needs a positive number`);
      return n;
    };
    switch (flag) {
      case '--minutes':
        options.minutes = number();
        break;
      case '--seed':
        options.seeds = [Math.trunc(number())];
        break;
      case '--seeds':
        options.seeds = value()
          .split(',')
          .map((s) => Math.trunc(Number(s)));
        break;
      case '--modes':
        options.modes = parseModes(value());
        break;
      case '--round-seconds':
        options.roundSeconds = number();
        break;
      case '--processes':
        options.processes = Math.max(2, Math.trunc(number()));
        break;
      case '--shrink-minutes':
        options.shrinkMinutes = number();
        break;
      case '--no-faults':
        options.faults = false;
        break;
      case '--no-shrink':
        options.shrink = false;
        break;
      case '--replay':
        options.replay = JSON.parse(value()) as Round;
        break;
      case '--path':
        options.path = value();
        break;
      case '--ci':
        options.ci = true;
        break;
      case '--json':
        options.json = true;
        break;
      default:
        throw new Error(`unknown option ${flag} (see test/chaos/README.md)`);
    }
  }
  if (options.seeds.some((seed) => !Number.isSafeInteger(seed))) throw new Error('bad seed');
  // A fixed seed's path names a round of the default workload; other options draw other rounds.
  const workload = [
    '--modes',
    '--round-seconds',
    '--processes',
    '--no-faults',
    '--seed',
    '--seeds',
  ];
  if (options.ci && argv.some((flag) => workload.includes(flag))) {
    throw new Error(`--ci runs the default workload: drop ${workload.join(', ')}`);
  }
  return options;
}

function parseModes(list: string): Mode[] {
  const modes = list.split(',').map((m) => m.trim());
  const unknown = modes.filter((m) => !(MODES as readonly string[]).includes(m));
  if (unknown.length > 0 || modes.length === 0) {
    throw new Error(`unknown mode(s) ${unknown.join(', ')}; choose from ${MODES.join(', ')}`);
  }
  return modes as Mode[];
}

/** A random seed for fast-check (a 31-bit integer). */
export function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 31);
}
