/**
 * The CLI's progress bar on a real terminal: the reporter runs under tmux (a pseudo-terminal of a known width), and
 * the screen is read back with `capture-pane`. Checks that the bar is redrawn in place (one line per stage, no
 * leftovers of a longer redraw, never wider than the terminal), shows an ETA while running and the elapsed time
 * when done; and that piped output has plain lines with no carriage return or escape code. Skipped (with the
 * reason) where tmux is not installed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const REPO = resolve(fileURLToPath(import.meta.url), '../../..');
const CHILD = ['--import', 'tsx', resolve(REPO, 'test/fixtures/progress-child.ts')];
const hasTmux = spawnSync('tmux', ['-V']).status === 0;
// A tmux server of this file's own (-L socket), and a session per test that stays until the end: killing a
// server's last session makes it exit, and a new session started at that moment fails with "server exited
// unexpectedly" (seen in CI when the second test killed the first's session and started its own at once).
const socket = `tt-progress-${process.pid}-${process.env.VITEST_POOL_ID ?? 0}`;
const tmux = (...args: string[]) => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

afterAll(() => {
  if (!hasTmux) return;
  spawnSync('tmux', ['-L', socket, 'kill-server']);
  // kill-server leaves the socket file behind (tmux puts it under $TMUX_TMPDIR, else /tmp).
  const uid = process.getuid?.();
  if (uid !== undefined) rmSync(join(process.env.TMUX_TMPDIR ?? '/tmp', `tmux-${uid}`, socket), { force: true });
});

describe.skipIf(!hasTmux)('progress bar on a real terminal (tmux)', () => {
  it('redrawn in place, one line per stage, an ETA while running, within the width', async () => {
    const columns = 60;
    const session = 'wide';
    // `; sleep`: the pane outlives the child, so its last screen can be read (the server is killed after all tests).
    const command = `${[process.execPath, ...CHILD, 'pause'].map((a) => `'${a}'`).join(' ')}; sleep 60`;
    tmux('new-session', '-d', '-s', session, '-x', String(columns), '-y', '20', '-c', REPO, command);
    const screen = () => tmux('capture-pane', '-p', '-S', '-', '-t', session);
    // Halfway through the first stage: the bar is on screen with its ETA.
    const mid = await until('the paused bar', () => (screen().includes('PAUSED') ? screen() : undefined));
    const midBar = mid.split('\n').find((l) => l.startsWith('extract ['));
    expect(midBar, mid).toMatch(/^extract \[#+\.+\] 21\/40 \d+\/s eta \d+s$/);
    tmux('send-keys', '-t', session, 'Enter');
    const end = await until('the end', () => (screen().includes('DONE') ? screen() : undefined));
    const lines = end.split('\n').filter((l) => l.trim() !== '');
    const bars = lines.filter((l) => /^\w+ \[/.test(l));
    // One line per stage (the mid-stage pause broke the line once: its bar was left where it stood).
    expect(bars.filter((l) => l.startsWith('train ['))).toHaveLength(1);
    expect(bars.find((l) => l.startsWith('train ['))).toMatch(/^train \[#+\] 25\/25 \d+\/s in \d+s$/);
    expect(bars.some((l) => /^extract \[#+\] 40\/40 \d+\/s in \d+s$/.test(l)), end).toBe(true);
    for (const l of lines) expect(l.length).toBeLessThan(columns);
    // Lines written while the bar is open get lines of their own (the bar steps aside and is drawn again below).
    expect(lines).toContain('log line on stderr');
    expect(lines).toContain('line on stdout');
    expect(lines.indexOf('log line on stderr')).toBeLessThan(lines.findIndex((l) => l.startsWith('train [')));
    expect(end).not.toMatch(/\x1b|\r|\^\[/);
  }, 90_000);

  it('a narrow terminal: the bar shrinks and the line is cut, never wrapped', async () => {
    const columns = 30;
    const session = 'narrow';
    const command = `${[process.execPath, ...CHILD].map((a) => `'${a}'`).join(' ')}; sleep 60`;
    tmux('new-session', '-d', '-s', session, '-x', String(columns), '-y', '20', '-c', REPO, command);
    const end = await until('the end', () => {
      const s = tmux('capture-pane', '-p', '-S', '-', '-t', session);
      return s.includes('DONE') ? s : undefined;
    });
    const lines = end.split('\n').filter((l) => l.trim() !== '');
    expect(lines.filter((l) => l.startsWith('extract ['))).toHaveLength(1);
    expect(lines.filter((l) => l.startsWith('train ['))).toHaveLength(1);
    for (const l of lines) expect(l.length).toBeLessThan(columns);
  }, 90_000);
});

describe('progress when piped', () => {
  it('plain lines (every 10%), no carriage return, no escape code, no bar', () => {
    const r = spawnSync(process.execPath, CHILD, { cwd: REPO, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr).not.toMatch(/\r|\x1b/);
    const lines = r.stderr.trim().split('\n');
    expect(lines.at(-1)).toBe('DONE');
    expect(lines.filter((l) => l.startsWith('extract: '))).toHaveLength(11); // the first step, then every 10%
    expect(lines.filter((l) => l.startsWith('train: ')).length).toBeGreaterThanOrEqual(10);
    expect(lines.every((l) => /^(extract|train): \d+\/\d+ \(\d+%(, \d+\/s)?\)$|^DONE$|^log line on stderr$/.test(l))).toBe(true);
    expect(r.stdout).toBe('line on stdout\n');
  });
});
