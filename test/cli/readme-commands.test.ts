// The commands the README and INSTALL.md tell a person to type: each one is a command the CLI
// knows, and each one typed in a checkout works there (npm install puts no bin on PATH for a
// local package: `npx community-gateway`; the bare name exists once install.sh has run).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, assertBuilt, cli } from '../helpers/cli.js';

beforeAll(assertBuilt);

interface Block {
  /** The prose just before the code block. */
  intro: string;
  lines: string[];
  /** 1-based line of the block's first line in the file. */
  at: number;
}

function codeBlocks(file: string): Block[] {
  const lines = fs.readFileSync(path.join(ROOT, file), 'utf8').split('\n');
  const blocks: Block[] = [];
  let prose: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]!.startsWith('```')) {
      prose.push(lines[i]!);
      continue;
    }
    const start = i + 1;
    let j = start;
    while (j < lines.length && !lines[j]!.startsWith('```')) j++;
    // The last paragraph before the block.
    while (prose.length && prose.at(-1)!.trim() === '') prose.pop();
    const intro = prose.slice(prose.findLastIndex((l) => l.trim() === '') + 1).join(' ');
    blocks.push({ intro, lines: lines.slice(start, j), at: start + 1 });
    prose = [];
    i = j;
  }
  return blocks;
}

/** Every `community-gateway WORD` typed on a line (a command, or an option such as --help). */
function invocations(line: string): { cmd: string; npx: boolean }[] {
  // The service user's name in `sudo -u community-gateway CMD` is not the command.
  const code = line.replace(/\s#\s.*$/, '').replace(/-u\s+community-gateway\b/g, '-u USER');
  return [...code.matchAll(/(?:^|[\s;&|(`])(npx\s+)?community-gateway\s+([a-z-]+)/g)].map((m) => ({ npx: m[1] !== undefined, cmd: m[2]! }));
}

/** Inline `...` spans of prose, and code block lines, of a doc. */
function everyInvocation(file: string): { cmd: string; where: string }[] {
  const out: { cmd: string; where: string }[] = [];
  let inBlock = false;
  fs.readFileSync(path.join(ROOT, file), 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (line.startsWith('```')) inBlock = !inBlock;
      // Prose names the service, its user and its folders too: only what is set as code counts.
      const code = inBlock ? [line] : [...line.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
      for (const inv of code.flatMap(invocations)) out.push({ cmd: inv.cmd, where: `${file}:${i + 1}` });
    });
  return out;
}

/** A command the CLI has: its own --help starts "Usage: community-gateway CMD". */
const known = new Map<string, boolean>();
function isCommand(cmd: string): boolean {
  if (cmd === '--help' || cmd === '--version') return true;
  if (!known.has(cmd)) known.set(cmd, new RegExp(`^Usage: community-gateway ${cmd}[ \n]`).test(cli([cmd, '--help']).stdout));
  return known.get(cmd)!;
}

describe('README and INSTALL.md commands', () => {
  it('every `community-gateway CMD` they name is a command of the CLI', () => {
    const all = ['README.md', 'docs/INSTALL.md'].flatMap(everyInvocation);
    expect(all.length).toBeGreaterThan(10);
    expect(all.filter((i) => !i.cmd.startsWith('-') && !isCommand(i.cmd)).map((i) => `${i.where}: ${i.cmd}`)).toEqual([]);
    // The checker itself tells a command from a non-command.
    expect(isCommand('check-config')).toBe(true);
    expect(isCommand('frobnicate')).toBe(false);
  });

  it("README: the bare name only in the installed box's block; every command of a checkout block runs as written", () => {
    const blocks = codeBlocks('README.md').filter((b) => b.lines.some((l) => invocations(l).length));
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    for (const b of blocks) {
      const bare = b.lines.flatMap((l) => invocations(l)).filter((i) => !i.npx);
      if (bare.length) expect(b.intro, `README.md:${b.at}: a bare community-gateway outside the installed-box block`).toMatch(/installed with `systemd\/install\.sh`/);
    }
    const checkout = blocks.filter((b) => b.lines.some((l) => invocations(l).some((i) => i.npx)));
    expect(checkout).toHaveLength(1);
    const typed = checkout[0]!.lines.map((l) => l.replace(/\s+#\s.*$/, '').trim()).filter((l) => l.startsWith('npx community-gateway ') && !/ run\b/.test(l));
    expect(typed.length).toBeGreaterThanOrEqual(3);
    // npx runs the bin file itself: the build must leave it executable (npx's own cache chmods
    // it only when it first links it, so a rebuilt dist/ was refused with "Permission denied").
    expect(fs.statSync(path.join(ROOT, 'dist/src/cli.js')).mode & 0o111, 'dist/src/cli.js is not executable').toBe(0o111);
    for (const line of typed) {
      // As a person types it after `npm install`, in the checkout; never a registry download.
      // ignore-scripts: the first npx in a checkout installs it into npx's cache, which runs its
      // `prepare` (tsc) and rewrote dist/ under the tests running beside this one.
      const r = spawnSync('sh', ['-c', line], { cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: { ...process.env, npm_config_offline: 'true', npm_config_ignore_scripts: 'true', LOG_LEVEL: 'warn' } });
      expect(r.status, `${line}\n${r.stderr}`).toBe(0);
      expect(r.stdout.length, line).toBeGreaterThan(0);
    }
  });

  it("INSTALL.md: the bare name only once install.sh has put it on PATH", () => {
    const lines = fs.readFileSync(path.join(ROOT, 'docs/INSTALL.md'), 'utf8').split('\n');
    const installed = lines.findIndex((l) => l.trim() === 'sudo systemd/install.sh');
    expect(installed).toBeGreaterThan(0);
    const early = lines.slice(0, installed).flatMap((l, i) => invocations(l).filter((x) => !x.npx).map((x) => `docs/INSTALL.md:${i + 1}: ${x.cmd}`));
    expect(early).toEqual([]);
    expect(lines.slice(installed).some((l) => invocations(l).length > 0)).toBe(true);
  });
});
