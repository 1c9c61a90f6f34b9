import { cpus } from 'node:os';

/** Formats a number for a table cell: `digits` decimals, thousands separated, `-` for NaN. */
export function fmt(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return '-';
  return value.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/**
 * A Markdown table padded to line up in a terminal too. The first column is left-aligned,
 * the others right-aligned (they hold numbers).
 */
export function markdownTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    '| ' +
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ') +
    ' |';
  const rule =
    '|' +
    widths.map((w, i) => (i === 0 ? ':' + '-'.repeat(w + 1) : '-'.repeat(w + 1) + ':')).join('|') +
    '|';
  return [line(headers), rule, ...rows.map(line)].join('\n');
}

/** The closing line that names the machine, so results from different hosts are not mixed up. */
export function machineLine(redisVersion: string): string {
  const cores = cpus();
  const model = cores[0]?.model.trim() ?? 'unknown CPU';
  return `Machine: ${model}, ${cores.length} cores, Node ${process.version}, redis-server ${redisVersion}`;
}
