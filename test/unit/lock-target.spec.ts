import fc from 'fast-check';
import { hashSlot } from '../../lib/core/redis/cluster-slot.js';
import {
  lockName,
  lockTarget,
  semaphoreTarget,
  subTarget,
} from '../../lib/core/keys/lock-target.js';
import { rwLockTarget } from '../../lib/core/keys/rw-lock-target.js';

/**
 * Every Redis key a lock touches besides its lock key: a plain lock's, a read-write lock's on the
 * same key (writers waiting, fair queue, spot deadlines; it shares the lock key and fence) and
 * the semaphore's of its key.
 */
const companions = (prefix: string, key: string): string[] => {
  const target = lockTarget(prefix, key);
  const rw = rwLockTarget(prefix, key, 'write', true).rwKeys.slice(2);
  return [
    ...target.fences,
    ...target.queues,
    ...target.timeouts,
    ...rw,
    ...semaphoreTarget(prefix, key).locks,
  ];
};

/** Every channel of a key: its lock's releases and its semaphore's. */
const channels = (prefix: string, key: string): string[] => [
  ...lockTarget(prefix, key).channels,
  ...semaphoreTarget(prefix, key).channels,
];

/** Keys and prefixes rich in the characters the naming rules turn on. */
const part = fc.string({
  unit: fc.constantFrom(
    '{',
    '}',
    ':',
    'a',
    'b',
    '\n',
    'lock',
    'fence',
    'semaphore',
    'released',
    '-',
    'rw',
    'queue',
  ),
});
const key = part.filter((k) => k.length > 0);

describe('lock names in Redis', () => {
  it.each([
    ['lock:', 'order:1', 'lock:{order:1}'],
    ['lock:', '{orders}:1', 'lock:{orders}:1:lock'],
    ['lock:', '{orders}:1:fence', 'lock:{orders}:1:fence:lock'],
    ['lock:', '{x}', 'lock:{x}:lock'],
    ['lock:', 'x', 'lock:{x}'],
    ['app:{eu}:', 'job', 'app:{eu}:job:lock'],
    ['app:{eu}:', 'job:queue', 'app:{eu}:job:queue:lock'],
    ['lock:', '{}x', 'lock:{{}x}'], // an empty tag is no tag, as in Redis Cluster
    ['a{', 'b}', 'a{b}:lock'], // a tag across prefix and key is a tag
  ])('under prefix %p, key %p locks %p', (prefix, k, name) => {
    expect(lockName(prefix, k)).toBe(name);
    expect(lockTarget(prefix, k).locks).toEqual([name]);
  });

  it('names the companions after the lock key, with endings no lock key has', () => {
    const target = lockTarget('lock:', '{orders}:1');
    expect(target).toMatchObject({
      locks: ['lock:{orders}:1:lock'],
      fences: ['lock:{orders}:1:lock:fence'],
      queues: ['lock:{orders}:1:lock:queue'],
      timeouts: ['lock:{orders}:1:lock:timeouts'],
      channels: ['lock:{orders}:1:lock:released'],
      id: 'lock:{orders}:1:lock',
    });
    expect(semaphoreTarget('lock:', '{orders}:1')).toMatchObject({
      locks: ['lock:{orders}:1:lock:semaphore'],
      channels: ['lock:{orders}:1:lock:semaphore:released'],
      id: 'lock:{orders}:1:lock:semaphore',
    });
  });

  it('gives distinct keys under one prefix distinct lock keys', () => {
    // Random pairs, and pairs made to collide under looser rules: a key and its hash-tagged form.
    const pairs = fc.oneof(
      fc.tuple(key, key),
      key.map((k) => [k, `{${k}}`] as const),
      key.map((k) => [k, k.replace(/^\{(.+)\}$/, '$1')] as const),
    );
    fc.assert(
      fc.property(part, pairs, (prefix, [a, b]) => {
        fc.pre(a !== b && b.length > 0);
        expect(lockName(prefix, a)).not.toBe(lockName(prefix, b));
      }),
      { numRuns: 2000 },
    );
  });

  it('never names a lock key or a companion of one lock with a companion of another', () => {
    // Another lock at random, or one whose prefix and key spell a companion of the first.
    const lockPair = fc.tuple(part, key, fc.nat(), fc.nat()).map(([p1, k1, pick, at]) => {
      const spelt = companions(p1, k1)[pick % 7];
      const split = at % spelt.length;
      return [p1, k1, spelt.slice(0, split), spelt.slice(split)] as const;
    });
    fc.assert(
      fc.property(fc.oneof(fc.tuple(part, key, part, key), lockPair), ([p1, k1, p2, k2]) => {
        const own = companions(p1, k1);
        const other = companions(p2, k2);
        expect(own).not.toContain(lockName(p2, k2));
        expect(other).not.toContain(lockName(p1, k1));
        if (lockName(p1, k1) !== lockName(p2, k2)) {
          expect(own.filter((name) => other.includes(name))).toEqual([]);
        }
        // The kinds differ from each other too: a fence is never the queue of any lock.
        expect(new Set(own).size).toBe(own.length);
        // Channels likewise: a semaphore's releases never wake the waiters of another key.
        if (lockName(p1, k1) !== lockName(p2, k2)) {
          const theirs = channels(p2, k2);
          expect(channels(p1, k1).filter((name) => theirs.includes(name))).toEqual([]);
        }
      }),
      {
        numRuns: 2000,
        // A plain lock key and the tagged lock key that extends it ('lock:{a}', 'lock:{a}:lock'):
        // their companions must still differ.
        examples: [[['lock:', 'a', 'lock:', '{a}']], [['lock:', '{a}', 'lock:', 'a']]],
      },
    );
  });

  it('gives every name of a lock the slot of its lock key when that has a hash tag', () => {
    fc.assert(
      fc.property(part, key, (prefix, k) => {
        const target = lockTarget(prefix, k);
        // Not so for a plain name whose first `{` meets a `}` at once ('lock:{}x}' for key '}x').
        fc.pre(/^[^{]*\{[^}]/.test(target.locks[0]));
        const slot = hashSlot(target.locks[0]);
        for (const name of [...companions(prefix, k), ...channels(prefix, k)]) {
          expect(hashSlot(name)).toBe(slot);
        }
      }),
      {
        numRuns: 500,
        examples: [
          ['lock:', 'order:1'],
          ['lock:', '{t}:1'],
          ['a:{eu}:', 'x'],
        ],
      },
    );
  });
});

describe('lock identities within a process', () => {
  it('tells the single key "{a}\\nlock:{b}" from the keys a and b', () => {
    const single = lockTarget('lock:', '{a}\nlock:{b}');
    const both = lockTarget('lock:', ['a', 'b']);
    expect(single.id).not.toBe(both.id);
    expect(both.id).toBe(JSON.stringify(['lock:{a}', 'lock:{b}']));
  });

  it('gives two key lists the same identity only when they name the same lock keys', () => {
    const keys = fc.array(key, { minLength: 1, maxLength: 4 });
    // Random lists, and a single key spelling the lock keys of a list joined by a separator.
    const spelt = fc
      .tuple(part, keys, fc.constantFrom('\n', ',', ''))
      .map(([prefix, list, sep]) => {
        const joined = lockTarget(prefix, list).locks.join(sep).slice(prefix.length);
        return [prefix, list, [joined || 'x']] as const;
      });
    fc.assert(
      fc.property(fc.oneof(fc.tuple(part, keys, keys), spelt), ([prefix, a, b]) => {
        const [ta, tb] = [lockTarget(prefix, a), lockTarget(prefix, b)];
        const same = new Set(ta.locks).size === new Set([...ta.locks, ...tb.locks]).size;
        const sameSize = ta.locks.length === tb.locks.length;
        expect(ta.id === tb.id).toBe(same && sameSize);
      }),
      { numRuns: 2000 },
    );
  });

  it('gives one key the identity of a list of only that key, and of a Cluster part of it', () => {
    expect(lockTarget('lock:', ['a', 'a']).id).toBe(lockTarget('lock:', 'a').id);
    const part = subTarget(lockTarget('lock:', ['a', 'b', 'c']), [1]);
    expect(part.id).toBe(lockTarget('lock:', 'b').id);
    expect(subTarget(lockTarget('lock:', ['a', 'b', 'c']), [0, 2]).id).toBe(
      lockTarget('lock:', ['a', 'c']).id,
    );
  });

  it('drops keys that name the same lock key once, keeping keys and lock keys aligned', () => {
    const target = lockTarget('lock:', ['b', 'a', 'b']);
    expect(target.keys).toEqual(['a', 'b']);
    expect(target.locks).toEqual(['lock:{a}', 'lock:{b}']);
    expect(target.acquireKeys).toEqual([
      'lock:{a}',
      'lock:{b}',
      'lock:{a}:fence',
      'lock:{b}:fence',
    ]);
  });
});
