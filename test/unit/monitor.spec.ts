import { monitorLineTime, parseMonitorLine } from '../support/monitor.js';

describe('parseMonitorLine (the harness MONITOR reader)', () => {
  it('reads the command and arguments of a client command and of a command a script ran', () => {
    expect(parseMonitorLine('+1700000000.123456 [0 127.0.0.1:5000] "set" "k" "v" "NX"')).toEqual([
      'set',
      'k',
      'v',
      'NX',
    ]);
    expect(parseMonitorLine('+1700000000.123456 [0 lua] "incr" "lock:{a}:fence"')).toEqual([
      'incr',
      'lock:{a}:fence',
    ]);
  });

  it('undoes the escapes MONITOR writes', () => {
    const line = String.raw`+1.0 [0 unix:/tmp/r.sock] "eval" "a\"b\\c\n\x01" ""`;
    expect(parseMonitorLine(line)).toEqual(['eval', 'a"b\\c\n\x01', '']);
  });

  it('reads when the server ran the command, in ms on its clock', () => {
    expect(monitorLineTime('+1700000000.123456 [0 lua] "incr" "k"')).toBeCloseTo(
      1700000000123.456,
      3,
    );
  });

  it('ignores lines that are not commands', () => {
    expect(parseMonitorLine('+OK')).toBeUndefined();
    expect(parseMonitorLine('-ERR nope')).toBeUndefined();
  });
});
