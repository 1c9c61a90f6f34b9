/**
 * The chaos checker's pure part on hand-made records: what it must flag and what it must not.
 */
import { checkRound, WAIT_GRACE, type RoundObservations } from './checker.js';
import type { InjectedFault, SectionRecord, WaitRecord } from './records.js';

const PID_A = 100;
const PID_B = 200;

function section(overrides: Partial<SectionRecord>): SectionRecord {
  return {
    t: 'section',
    pid: PID_A,
    mode: 'default',
    keys: ['k'],
    fence: '16',
    joined: false,
    autoRenew: true,
    ttl: 1000,
    start: 0,
    lastHeld: 100,
    end: 100,
    enteredHeld: true,
    ...overrides,
  };
}

function wait(overrides: Partial<WaitRecord>): WaitRecord {
  return {
    t: 'wait',
    pid: PID_A,
    mode: 'default',
    keys: ['k'],
    start: 0,
    end: 100,
    waitTimeout: 500,
    outcome: 'granted',
    ...overrides,
  };
}

function fault(overrides: Partial<InjectedFault> & Pick<InjectedFault, 'kind'>): InjectedFault {
  return { at: 0, duration: 0, start: 0, end: 0, ...overrides };
}

function check(records: Partial<RoundObservations>) {
  return checkRound({
    sections: [],
    waits: [],
    stalls: [],
    errors: [],
    faults: [],
    exits: [],
    leftovers: [],
    ...records,
  });
}

const invariants = (records: Partial<RoundObservations>) =>
  check(records).violations.map((v) => v.invariant);

describe('chaos checker: intervals of one key', () => {
  it('flags two grants of one key whose intervals overlap', () => {
    const a = section({ start: 0, lastHeld: 100, fence: '16' });
    const b = section({ pid: PID_B, start: 50, lastHeld: 150, fence: '32' });
    expect(invariants({ sections: [a, b] })).toEqual(['overlap']);
  });

  it('counts a multi-key interval for each of its keys', () => {
    const multi = section({ keys: ['k', 'j'], start: 0, lastHeld: 100, fence: '16' });
    const single = section({ pid: PID_B, keys: ['j'], start: 99, lastHeld: 200, fence: '32' });
    expect(invariants({ sections: [multi, single] })).toEqual(['overlap']);
  });

  it('does not flag intervals that only follow each other, nor a joined call of the same grant', () => {
    const a = section({ start: 0, lastHeld: 100, fence: '16' });
    const joined = section({ start: 10, lastHeld: 90, fence: '16', joined: true });
    const b = section({ pid: PID_B, start: 100, lastHeld: 200, fence: '32' });
    expect(invariants({ sections: [a, joined, b] })).toEqual([]);
  });

  it('reports an overlap touching a restart of the key server apart, not as a violation', () => {
    const a = section({ start: 0, lastHeld: 500, fence: '16' });
    const b = section({ pid: PID_B, start: 300, lastHeld: 600, fence: '32' });
    const restart = fault({ kind: 'restart', server: 'main', start: 200, end: 250 });
    const result = check({ sections: [a, b], faults: [restart] });
    expect(result.violations).toEqual([]);
    expect(result.restartOverlaps).toBe(1);
  });

  it('reports apart an overlap of a lock passed on after a restart whose chain of passes began before it', () => {
    const granted = section({ start: 0, lastHeld: 40, fence: '16' });
    const passed = section({ start: 40, lastHeld: 90, fence: '17' });
    const passedAgain = section({ start: 90, lastHeld: 500, fence: '18' });
    const b = section({ pid: PID_B, start: 300, lastHeld: 600, fence: '32' });
    const restart = fault({ kind: 'restart', server: 'main', start: 60, end: 80 });
    const result = check({ sections: [granted, passed, passedAgain, b], faults: [restart] });
    expect(result.violations).toEqual([]);
    expect(result.restartOverlaps).toBe(1);
    // Without the chain (another process's section with the token just below), it is flagged.
    const other = section({ pid: PID_B, start: 0, lastHeld: 40, fence: '17' });
    const alone = section({ pid: 300, start: 90, lastHeld: 500, fence: '18' });
    const c = section({ pid: 400, start: 300, lastHeld: 600, fence: '32' });
    expect(invariants({ sections: [other, alone, c], faults: [restart] })).toContain('overlap');
  });

  it('reports apart a token from a lease that spans a restart, below a grant made after it', () => {
    const granted = section({ start: 0, lastHeld: 40, fence: '16' });
    const afterRestart = section({ pid: PID_B, start: 100, lastHeld: 150, fence: '900' });
    const passedLater = section({ start: 160, lastHeld: 200, fence: '17' });
    const restart = fault({ kind: 'restart', server: 'main', start: 60, end: 80 });
    const sections = [granted, afterRestart, passedLater];
    expect(check({ sections, faults: [restart] }).violations).toEqual([]);
    // The same tokens without the restart are an inversion.
    expect(invariants({ sections })).toEqual(['fencing']);
  });

  it('still flags an overlap when the restart was of another server', () => {
    const a = section({ start: 0, lastHeld: 500, fence: '16' });
    const b = section({ pid: PID_B, start: 300, lastHeld: 600, fence: '32' });
    const restart = fault({ kind: 'restart', server: 'r1', start: 200, end: 250 });
    expect(invariants({ sections: [a, b], faults: [restart] })).toEqual(['overlap']);
  });
});

describe('chaos checker: fencing order', () => {
  it('flags a later grant with a lower or equal fencing token', () => {
    const a = section({ start: 0, lastHeld: 100, fence: '48' });
    const b = section({ pid: PID_B, start: 200, lastHeld: 300, fence: '32' });
    const c = section({ start: 400, lastHeld: 500, fence: '32' });
    expect(invariants({ sections: [a, b, c] })).toEqual(['fencing', 'fencing']);
  });

  it('compares tokens as integers, not as strings', () => {
    const a = section({ start: 0, lastHeld: 100, fence: '9' });
    const b = section({ pid: PID_B, start: 200, lastHeld: 300, fence: '10' });
    expect(invariants({ sections: [a, b] })).toEqual([]);
  });

  it('reports a Redlock inversion apart (no single counter orders its tokens)', () => {
    const a = section({ mode: 'redlock', start: 0, lastHeld: 100, fence: '48' });
    const b = section({ mode: 'redlock', pid: PID_B, start: 200, lastHeld: 300, fence: '32' });
    const result = check({ sections: [a, b] });
    expect(result.violations).toEqual([]);
    expect(result.redlockFenceInversions).toBe(1);
  });
});

describe('chaos checker: what a holder saw', () => {
  it('flags a section that saw its lock released before it left', () => {
    const s = section({ joined: true, lostAt: 80, lossKind: 'released' });
    expect(invariants({ sections: [s] })).toEqual(['released-under-scope']);
  });

  it('flags a section entered on a lost lock, unless its process stalled just before', () => {
    const s = section({ start: 5000, enteredHeld: false, lastHeld: undefined, lostAt: 5000 });
    expect(invariants({ sections: [s] })).toEqual(['entered-lost']);
    const stall = { t: 'stall' as const, pid: PID_A, start: 4500, end: 4900 };
    expect(invariants({ sections: [s], stalls: [stall] })).toEqual([]);
  });

  it('flags a renewed lock lost without a fault, and one lost after a grant delayed by 70% of the ttl', () => {
    const s = section({ start: 1000, lastHeld: 1500, lostAt: 1510, lossKind: 'lost' });
    expect(invariants({ sections: [s] })).toEqual(['unexplained-loss']);
    // The grant's reply was held back 700 ms by the proxy and arrived as the section began.
    const delayed = fault({
      kind: 'proxy-delay',
      role: 'cmd',
      pid: PID_A,
      delay: 700,
      start: 280,
      end: 330,
    });
    expect(invariants({ sections: [s], faults: [delayed] })).toEqual(['unexplained-loss']);
  });

  it('explains a loss by replies held back behind a proxy delay well into the hold', () => {
    const s = section({ start: 1000, lastHeld: 1500, lostAt: 1510, lossKind: 'lost' });
    // The window closed before entering, but what it held back arrives until 1600.
    const delayed = fault({
      kind: 'proxy-delay',
      role: 'cmd',
      pid: PID_A,
      delay: 700,
      start: 700,
      end: 900,
    });
    expect(check({ sections: [s], faults: [delayed] }).lossExcuses).toEqual({
      'proxy-delay past the lease': 1,
    });
    // Another process's delay explains nothing.
    const elsewhere = { ...delayed, pid: PID_B };
    expect(invariants({ sections: [s], faults: [elsewhere] })).toEqual(['unexplained-loss']);
  });

  it('explains a loss by a long stall of the holder, or by Redis frozen during the hold', () => {
    const s = section({ start: 1000, lastHeld: 1500, lostAt: 1510, lossKind: 'lost' });
    const stall = { t: 'stall' as const, pid: PID_A, start: 1200, end: 1500 };
    expect(check({ sections: [s], stalls: [stall] }).excusedLosses).toBe(1);
    const frozen = fault({ kind: 'stop-redis', server: 'main', start: 1150, end: 1650 });
    expect(invariants({ sections: [s], faults: [frozen] })).toEqual([]);
    // Two stops of Redis back to back count as one: 500 + 300 ms before entering.
    const stops = [
      fault({ kind: 'stop-redis', server: 'main', start: 450, end: 950 }),
      fault({ kind: 'stop-redis', server: 'main', start: 960, end: 1260 }),
    ];
    expect(check({ sections: [s], faults: stops }).lossExcuses).toEqual({
      'Redis stalled during the hold': 1,
    });
    expect(invariants({ sections: [s], faults: [stops[0]] })).toEqual(['unexplained-loss']);
    // A short stall of another process explains nothing.
    const other = { t: 'stall' as const, pid: PID_B, start: 1200, end: 1500 };
    expect(invariants({ sections: [s], stalls: [other] })).toEqual(['unexplained-loss']);
  });

  it('flags isHeld() false with the signal not aborted, and a lock held again after a loss', () => {
    const lag = section({ lostAt: 50, lossKind: 'lost', signalLagAt: 50, autoRenew: false });
    const revived = section({ fence: '32', start: 200, lostAt: 220, lossKind: 'lost' });
    revived.revivedAt = 240;
    revived.autoRenew = false;
    expect(invariants({ sections: [lag, revived] })).toEqual(['signal-lag', 'revived']);
  });
});

describe('chaos checker: waits, errors, exits, keys', () => {
  it(`flags a wait that outlived its waitTimeout by more than ${WAIT_GRACE} ms`, () => {
    const late = wait({ start: 0, end: 500 + WAIT_GRACE + 1, outcome: 'not-acquired' });
    const onTime = wait({ start: 0, end: 500 + WAIT_GRACE, outcome: 'not-acquired' });
    expect(invariants({ waits: [late, onTime] })).toEqual(['wait-bound']);
  });

  it('excuses a late wait of a process stopped meanwhile, but not of another', () => {
    const late = wait({ start: 0, end: 2000, outcome: 'granted' });
    const stopped = fault({ kind: 'stop-worker', pid: PID_A, start: 100, end: 1500 });
    expect(invariants({ waits: [late], faults: [stopped] })).toEqual([]);
    const elsewhere = fault({ kind: 'stop-worker', pid: PID_B, start: 100, end: 1500 });
    expect(invariants({ waits: [late], faults: [elsewhere] })).toEqual(['wait-bound']);
  });

  it('flags worker errors, killed or failed workers, and keys left without a TTL', () => {
    expect(
      invariants({
        errors: [{ t: 'error', pid: PID_A, kind: 'unhandledRejection', message: 'boom' }],
        exits: [
          { pid: PID_A, code: 0, signal: null, killed: false },
          { pid: PID_B, code: null, signal: 'SIGKILL', killed: true },
        ],
        leftovers: [{ server: 'main', key: 'lock:{k}' }],
      }),
    ).toEqual(['worker-error', 'no-exit', 'no-ttl-key']);
  });
});

describe('chaos checker: semaphore holders', () => {
  const permit = (pid: number, start: number, lastHeld: number) =>
    section({ mode: 'semaphore', keys: ['s0'], fence: '0', pid, start, lastHeld, end: lastHeld });

  it('lets N holders of one key overlap, with no fencing order among them', () => {
    const sections = [permit(PID_A, 0, 100), permit(PID_B, 50, 150), permit(PID_A, 100, 200)];
    expect(invariants({ sections })).toEqual([]);
  });

  it('flags N + 1 holders of one key at once', () => {
    const sections = [permit(PID_A, 0, 100), permit(PID_B, 50, 150), permit(300, 90, 120)];
    expect(invariants({ sections })).toEqual(['too-many-holders']);
  });

  it('reports a crowd that touches a restart of the server apart', () => {
    const sections = [permit(PID_A, 0, 100), permit(PID_B, 50, 150), permit(300, 90, 120)];
    const faults = [fault({ kind: 'restart', server: 'main', start: 80, end: 95 })];
    const result = check({ sections, faults });
    expect(result.violations).toEqual([]);
    expect(result.restartOverlaps).toBe(1);
  });
});

describe('read-write sections (mode rw)', () => {
  const rw = (overrides: Partial<SectionRecord>) => section({ mode: 'rw', ...overrides });

  it('lets readers overlap, and flags a writer overlapping a reader or a writer', () => {
    const reader = rw({ side: 'read', start: 0, lastHeld: 100, fence: '16' });
    const otherReader = rw({ side: 'read', pid: PID_B, start: 50, lastHeld: 150, fence: '16' });
    expect(invariants({ sections: [reader, otherReader] })).toEqual([]);
    const writer = rw({ side: 'write', pid: PID_B, start: 50, lastHeld: 150, fence: '32' });
    expect(invariants({ sections: [reader, writer] })).toEqual(['overlap']);
    const writer2 = rw({ side: 'write', start: 0, lastHeld: 100, fence: '16' });
    expect(invariants({ sections: [writer2, writer] })).toEqual(['overlap']);
  });

  it("flags a reader whose token is below the writer's before it, and equal writer tokens", () => {
    const writer = rw({ side: 'write', start: 0, lastHeld: 100, fence: '32' });
    const follows = rw({ side: 'read', pid: PID_B, start: 200, lastHeld: 300, fence: '32' });
    expect(invariants({ sections: [writer, follows] })).toEqual([]);
    const stale = rw({ side: 'read', pid: PID_B, start: 200, lastHeld: 300, fence: '16' });
    expect(invariants({ sections: [writer, stale] })).toEqual(['fencing']);
    const again = rw({ side: 'write', pid: PID_B, start: 200, lastHeld: 300, fence: '32' });
    expect(invariants({ sections: [writer, again] })).toEqual(['fencing']);
  });
});
