/*
 * Every Lua script the library runs, in this folder: `acquire.scripts.ts`, `extend.script.ts` and
 * `release.scripts.ts`, with the Lua functions they share in `shared.lua.ts`. Each takes n lock
 * keys (n >= 1: a multi-key lock is all or nothing in one script) and compares the caller's token
 * before it touches a key, so an owner whose lease ran out can never delete or extend the lock of
 * the owner after it.
 *
 * Shared conventions:
 * - Times come from Redis (`TIME`), never from a client: queue spots and fencing tokens must not
 *   depend on which machine's clock asked.
 * - A fencing token comes from a counter per key, seeded from Redis' clock in microseconds when it
 *   is created. Stepping it up by FENCE_STRIDE makes tokens strictly increasing and leaves the
 *   numbers in between to locks passed on inside a process; seeding from the clock keeps them
 *   increasing when the counter is gone (expired, or lost with a Redis restarted without
 *   persistence), as long as that server's clock has not gone back meanwhile.
 * - A release wakes waiters: when a fair queue holds waiters, it hands the lock to the first and
 *   tells only it (TELL_WAITER), so no other process even wakes up; otherwise everyone on the
 *   key's channel, where the first waiter of each process listens. A key's channel is its lock
 *   key + CHANNEL_SUFFIX.
 * - Constants are written into the scripts rather than passed: fewer arguments on every call.
 * - PUBLISH is `publish` on a single Redis and `spublish` (sharded pub/sub, Redis 7) on a Cluster,
 *   where every channel is in its lock key's slot.
 * - Lua does not roll back: a command that fails after a write leaves that write behind (a lock
 *   key set for a whole ttl, say). So every script first checks each key it will touch (CHECK_KEYS:
 *   its type, and that a fencing counter holds an integer) and, when one was written by someone
 *   else, answers an error reply naming it (FOREIGN_KEY_ERROR) before it writes anything; after
 *   those checks none of its commands can fail. Arguments come from the client, which validated
 *   them, and are not checked again.
 */
export { LuaScript, foreignKeyError } from './lua-script.js';
export { acquireReply, busyPttl } from './acquire.scripts.js';
export { ClusterLockScripts, LockScripts, type LockScriptSet } from './lock-script-sets.js';
