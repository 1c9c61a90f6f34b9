/* The script sets a store runs: every script, for one Redis (PUBLISH) or a Cluster (SPUBLISH). */
import { LuaScript } from './lua-script.js';
import { ACQUIRE, ACQUIRE_FAIR, RAISE_FENCE } from './acquire.scripts.js';
import { EXTEND } from './extend.script.js';
import { LEAVE_QUEUE, RELEASE, RELEASE_UNQUEUED } from './release.scripts.js';

/** Every script, with the given publish command. */
function scriptSet(publish: 'publish' | 'spublish') {
  const script = (source: string) => new LuaScript(`local PUBLISH = '${publish}'${source}`);
  return {
    acquire: script(ACQUIRE),
    acquireFair: script(ACQUIRE_FAIR),
    extend: script(EXTEND),
    release: script(RELEASE),
    releaseUnqueued: script(RELEASE_UNQUEUED),
    leaveQueue: script(LEAVE_QUEUE),
    raiseFence: script(RAISE_FENCE),
  } as const;
}

/** The scripts for one Redis (or Sentinel): releases publish with PUBLISH. */
export const LockScripts = scriptSet('publish');

/** The scripts for Redis Cluster: releases publish with SPUBLISH, in the lock key's shard. */
export const ClusterLockScripts = scriptSet('spublish');

/** One of the two script sets. */
export type LockScriptSet = typeof LockScripts;
