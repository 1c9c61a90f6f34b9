import { hashSlot } from '../../lib/core/redis/cluster-slot.js';

describe('hashSlot (Redis Cluster key slots)', () => {
  it.each([
    ['somekey', 11058],
    ['foo', 12182],
    ['bar', 5061],
    ['', 0],
  ])('hashes %p to slot %p, as CLUSTER KEYSLOT does', (key, slot) => {
    expect(hashSlot(key)).toBe(slot);
  });

  it('hashes only the hash tag when there is one', () => {
    expect(hashSlot('{user1000}.following')).toBe(hashSlot('{user1000}.followers'));
    expect(hashSlot('lock:{order:1}:fence')).toBe(hashSlot('order:1'));
  });
});
