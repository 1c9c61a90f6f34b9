/**
 * Which faults explain what a correct library may still do under them: lose a renewed lock, enter
 * late, overrun a wait. Pure functions over the records, used by checker.ts.
 *
 * The thresholds, in shares of the lock's ttl (a correct watchdog renews while about 2/3 of the
 * lease is left, so a stall shorter than that is survivable; these leave room for a margin):
 * - a stall of the holder's own process (SIGSTOP, event-loop block, or a lag its monitor
 *   measured) of at least ttl/4 from a ttl before entering to the loss explains a loss;
 * - Redis not answering (SIGSTOP, slow script) or the holder's replies held back by the proxy,
 *   during the hold (past its first tenth of a ttl), for at least 0.45 ttl explains a loss
 *   (Redis stalls less than a tenth of a ttl apart count as one);
 * - the same before entering (the grant's own reply delayed) explains it only from 0.75 ttl, or
 *   when the replies a proxy delay held back arrive after the lease can have ended (see
 *   `delayExcuse`): a grant whose reply took 70% of the ttl must survive (issue 14, case 4);
 * - a killed or dropped command connection, or a restart of the lock's server, explains a loss.
 *
 * @example
 * const why = lossExcuse(section, context); // e.g. 'stall', or undefined: a violation
 */
import type { InjectedFault, SectionRecord, ServerName, StallRecord } from './records.js';

/** Share of the ttl a holder-process stall must reach to explain a lost renewed lock. */
export const STALL_SHARE = 0.25;
/** Share of the ttl Redis (or the proxy) must stall during the hold to explain a loss. */
export const HOLD_STALL_SHARE = 0.45;
/** Share of the ttl a grant's reply must be delayed by to explain a loss (or a late entry). */
export const GRANT_DELAY_SHARE = 0.75;
/**
 * A fault counts as during the hold only if it lasts past entering by this share of the ttl: the
 * reply that ends a slow script (or a proxy delay) and the grant it held back arrive together.
 */
export const HOLD_START_SHARE = 0.1;
/** Share of the ttl before a lease's end at which a correct library may already give it up. */
export const LEASE_MARGIN_SHARE = 0.1;

/** What the excuses look at: the faults injected and the stalls the workers measured. */
export interface ExcuseContext {
  faults: readonly InjectedFault[];
  stalls: readonly StallRecord[];
}

/** Stretches in which the process `pid` did not run: measured stalls, SIGSTOPs, blocks. */
export function stallsOf(pid: number, ctx: ExcuseContext): { start: number; end: number }[] {
  const injected = ctx.faults.filter(
    (f) => f.pid === pid && (f.kind === 'stop-worker' || f.kind === 'block'),
  );
  return [...ctx.stalls.filter((s) => s.pid === pid), ...injected];
}

/** The servers a section's lock lives on. */
export function serversOf(section: { mode: string }): ServerName[] {
  return section.mode === 'redlock' ? ['r1', 'r2', 'r3'] : ['main'];
}

/** Whether [a0, a1] and [b0, b1] share a moment (closed intervals). */
export function touches(a0: number, a1: number, b0: number, b1: number): boolean {
  return a0 <= b1 && b0 <= a1;
}

/** Why a renewed lock's loss is explained by a fault, or undefined when it is not. */
export function lossExcuse(s: SectionRecord, ctx: ExcuseContext): string | undefined {
  const lostAt = s.lostAt ?? s.end;
  const before = s.start - s.ttl;
  const longStall = stallsOf(s.pid, ctx).find(
    (st) => st.end - st.start >= s.ttl * STALL_SHARE && touches(st.start, st.end, before, lostAt),
  );
  if (longStall) return 'holder stalled';
  const servers = serversOf(s);
  for (const f of ctx.faults) {
    const onServer = f.server !== undefined && servers.includes(f.server);
    if (onServer && f.kind === 'restart' && touches(f.start, f.end, before, lostAt)) {
      return 'restart';
    }
    const ownCmd = f.pid === s.pid && f.role === 'cmd' && s.mode !== 'redlock';
    if (ownCmd && (f.kind === 'client-kill' || f.kind === 'proxy-drop')) {
      if (touches(f.start, f.end + s.ttl, before, lostAt)) return 'connection dropped';
    }
    if (ownCmd && f.kind === 'proxy-delay') {
      const why = delayExcuse(s, f, lostAt);
      if (why) return why;
      continue;
    }
  }
  const intoHold = s.start + s.ttl * HOLD_START_SHARE;
  for (const st of redisStalls(s, ctx)) {
    const stall = st.end - st.start;
    if (touches(st.start, st.end, intoHold, lostAt) && stall >= s.ttl * HOLD_STALL_SHARE) {
      return 'Redis stalled during the hold';
    }
    if (touches(st.start, st.end, before, s.start) && stall >= s.ttl * GRANT_DELAY_SHARE) {
      return 'Redis stalled before entering';
    }
  }
  return undefined;
}

/**
 * The stretches in which a section's server(s) did not answer (SIGSTOP, slow scripts), those less
 * than a tenth of its ttl apart merged: a renewal cannot count on so short a gap.
 */
export function redisStalls(
  s: SectionRecord,
  ctx: ExcuseContext,
): { start: number; end: number }[] {
  const servers = serversOf(s);
  const stalls = ctx.faults
    .filter(
      (f) => (f.kind === 'stop-redis' || f.kind === 'slow-script') && servers.includes(f.server!),
    )
    .map((f) => ({ start: f.start, end: f.end }))
    .sort((a, b) => a.start - b.start);
  const merged: { start: number; end: number }[] = [];
  for (const st of stalls) {
    const last = merged[merged.length - 1];
    if (last && st.start - last.end <= s.ttl * 0.1) last.end = Math.max(last.end, st.end);
    else merged.push({ ...st });
  }
  return merged;
}

/**
 * Whether the proxy holding back the holder's replies explains its loss. A delay that began
 * before entering explains it when what it held back (the grant's reply, perhaps, and every reply
 * queued behind) arrived after the earliest end of the lease the section can have started with:
 * the grant was sent at least `delay` before entering, and a correct library may give a lease up
 * LEASE_MARGIN_SHARE of the ttl early. One that began during the hold explains it from 0.45 ttl.
 */
function delayExcuse(s: SectionRecord, f: InjectedFault, lostAt: number): string | undefined {
  const delay = f.delay ?? 0;
  const heldUntil = f.end + delay;
  const leaseEnd = s.start - delay + s.ttl * (1 - LEASE_MARGIN_SHARE);
  if (f.start <= s.start && heldUntil >= s.start && heldUntil >= leaseEnd) {
    return 'proxy-delay past the lease';
  }
  if (f.start >= s.start && f.start <= lostAt && delay >= s.ttl * HOLD_STALL_SHARE) {
    return 'proxy-delay during the hold';
  }
  if (touches(f.start, heldUntil, s.start - s.ttl, s.start) && delay >= s.ttl * GRANT_DELAY_SHARE) {
    return 'proxy-delay before entering';
  }
  return undefined;
}

/**
 * Why a section that started with `isHeld()` false is explained, or undefined: only a stall of
 * its own process, or a grant reply delayed by most of the ttl, between the grant and entering.
 * A restart is no excuse: a handle known lost must not run a body (issue 14, case 2).
 */
export function entryExcuse(s: SectionRecord, ctx: ExcuseContext): string | undefined {
  const before = s.start - s.ttl;
  if (stallsOf(s.pid, ctx).some((st) => touches(st.start, st.end, before, s.start))) {
    return 'holder stalled';
  }
  const grantDelay = s.ttl * GRANT_DELAY_SHARE;
  for (const st of redisStalls(s, ctx)) {
    if (touches(st.start, st.end, before, s.start) && st.end - st.start >= grantDelay) {
      return 'Redis stalled before entering';
    }
  }
  const delayed = ctx.faults.some(
    (f) =>
      f.kind === 'proxy-delay' &&
      f.pid === s.pid &&
      f.role === 'cmd' &&
      s.mode !== 'redlock' &&
      (f.delay ?? 0) >= grantDelay &&
      touches(f.start, f.end + (f.delay ?? 0), before, s.start),
  );
  return delayed ? 'proxy-delay before entering' : undefined;
}

/** Whether a wait of process `pid` from `start` to `end` overlapped a stall of that process. */
export function waitExcused(pid: number, start: number, end: number, ctx: ExcuseContext): boolean {
  return stallsOf(pid, ctx).some((st) => touches(st.start, st.end, start, end));
}
