// ConfigStore and atomicWrite on real files in a fresh temporary directory per test: each
// version holds the config its change produced (with that change's note), the running one is
// marked, the file as found is kept on the first save, pruning to the newest `keep` never
// drops the running one, ids never repeat, exact texts back, unknown ids refused, no temp
// files left, missing directories created, recovery from a lost or broken index, and the
// one-time conversion of stores written by the older (off-by-one) code, crash states included.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigStore, atomicWrite } from '../../src/config/config-store.js';

const dirs: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'cgw-config-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const T0 = Date.UTC(2025, 4, 1, 8, 0, 0);
const ORIGINAL = '# 现场配置 (site config)\nsite:\n  name: 东新园\n  # keep this comment\nlog:\n  level: info'; // no final newline on purpose

function makeStore(opts: { keep?: number } = {}) {
  const dir = tmpDir();
  const file = path.join(dir, 'site.yaml');
  const clock = { t: T0 };
  const store = new ConfigStore(file, { ...opts, now: () => clock.t });
  return { store, file, dir, clock, versionsDir: `${file}.versions` };
}

const text = (n: number) => `site:\n  name: text ${n}\n`;

const FRIDGE = (above: number) => `site:\n  name: 东新园\nalarms:\n  - id: fridge-warm\n    device: fridge-1\n    point: temperature\n    above: ${above}\n`;

function indexOf(versionsDir: string): { format: number; running: number | null; versions: { id: number; note: string }[] } {
  return JSON.parse(fs.readFileSync(path.join(versionsDir, 'index.json'), 'utf8'));
}

describe('ConfigStore', () => {
  it('keeps the file as found as version 1, the new text as version 2 (running) with the note of its change', () => {
    const { store, file, clock, versionsDir } = makeStore();
    fs.writeFileSync(file, ORIGINAL);
    expect(store.file).toBe(file);
    expect(store.read()).toBe(ORIGINAL);
    expect(store.versions()).toEqual([]);
    expect(store.runningId()).toBeNull();

    clock.t = T0 + 5000;
    const v = store.save(text(1), { user: 'admin', note: '改轮询周期' });
    expect(v).toEqual({ id: 2, ts: T0 + 5000, user: 'admin', note: '改轮询周期' });
    expect(fs.readFileSync(file, 'utf8')).toBe(text(1));
    expect(store.versions()).toEqual([
      { ...v, running: true },
      { id: 1, ts: T0 + 5000, user: 'system', note: 'the config as found', kind: 'found', running: false },
    ]);
    expect(store.runningId()).toBe(2);
    expect(store.version(2)).toBe(text(1));
    expect(store.version(1)).toBe(ORIGINAL);
    expect(fs.readFileSync(path.join(versionsDir, '2.yaml'), 'utf8')).toBe(text(1));
    expect(fs.readFileSync(path.join(versionsDir, '1.yaml'), 'utf8')).toBe(ORIGINAL);
    expect(fs.readFileSync(path.join(versionsDir, 'FORMAT'), 'utf8')).toBe('2\n');
    expect(indexOf(versionsDir)).toMatchObject({ format: 2, running: 2 });
    for (const f of ['1.yaml', '2.yaml', 'index.json']) expect(fs.statSync(path.join(versionsDir, f)).mode & 0o777).toBe(0o600);

    clock.t += 1000;
    const v3 = store.save(text(2), { user: 'admin', note: '' });
    expect(v3).toEqual({ id: 3, ts: T0 + 6000, user: 'admin', note: '' });
    expect(store.versions().map((x) => [x.id, x.running])).toEqual([[3, true], [2, false], [1, false]]);
    expect(store.version(3)).toBe(text(2));
    expect(store.version(2)).toBe(text(1));
    expect(store.read()).toBe(text(2));
  });

  it('issue 16: the note of a change is on the version holding that change, and rolling back to it restores it', () => {
    const { store, file } = makeStore();
    fs.writeFileSync(file, FRIDGE(8));
    const changed = store.save(FRIDGE(6), { user: 'admin', note: '冷藏柜报警阈值改为 6°C' });
    store.save(FRIDGE(10), { user: 'admin', note: '夏季临时放宽到 10°C' });
    const byNote = (n: string) => store.versions().find((v) => v.note === n)!;
    expect(byNote('冷藏柜报警阈值改为 6°C').id).toBe(changed.id);
    expect(store.version(byNote('冷藏柜报警阈值改为 6°C').id)).toContain('above: 6\n');
    expect(store.version(byNote('夏季临时放宽到 10°C').id)).toContain('above: 10\n');
    expect(store.version(byNote('the config as found').id)).toContain('above: 8\n');
    // A rollback (what App.apply does with version N's text): a new version, running, that names N.
    const back = store.save(store.version(changed.id), { user: 'admin', note: `rollback to version ${changed.id}`, kind: 'rollback', rollbackOf: changed.id });
    expect(fs.readFileSync(file, 'utf8')).toBe(FRIDGE(6));
    expect(store.versions()[0]).toEqual({ ...back, running: true, kind: 'rollback', rollbackOf: changed.id });
    expect(store.versions().filter((v) => v.running)).toHaveLength(1);
  });

  it('marks the running version only while its text is the running one', () => {
    const { store, file } = makeStore();
    fs.writeFileSync(file, text(0));
    store.save(text(1), { user: 'admin', note: 'a' });
    expect(store.runningId()).toBe(2);
    expect(store.runningId(text(1))).toBe(2);
    // The caller's running text (the daemon's) differs from the version: none is claimed.
    expect(store.runningId(text(0))).toBeNull();
    // Edited by hand outside the page: not version 2 any more...
    fs.writeFileSync(file, text(9));
    expect(store.versions().some((v) => v.running)).toBe(false);
    // ...and the next save keeps the hand-edited file as found before the new text.
    const v = store.save(text(2), { user: 'admin', note: 'b' });
    expect(v.id).toBe(4);
    expect(store.versions().map((x) => [x.id, x.note, x.running])).toEqual([
      [4, 'b', true],
      [3, 'the config as found (changed outside the page)', false],
      [2, 'a', false],
      [1, 'the config as found', false],
    ]);
    expect(store.version(3)).toBe(text(9));
  });

  it('keeps only the newest 10 versions over 12 saves, ids still increasing', () => {
    const { store, file, versionsDir } = makeStore();
    fs.writeFileSync(file, text(0));
    const ids: number[] = [];
    for (let i = 1; i <= 12; i++) ids.push(store.save(text(i), { user: 'admin', note: `save ${i}` }).id);
    expect(ids).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]); // 1 is the file as found
    const vs = store.versions();
    expect(vs.map((v) => v.id)).toEqual([13, 12, 11, 10, 9, 8, 7, 6, 5, 4]);
    // Version n holds the text save n-1 wrote, under that save's note.
    for (const v of vs) {
      expect(v.note).toBe(`save ${v.id - 1}`);
      expect(store.version(v.id)).toBe(text(v.id - 1));
    }
    expect(vs.filter((v) => v.running).map((v) => v.id)).toEqual([13]);
    expect(store.read()).toBe(text(12));
    const onDisk = fs.readdirSync(versionsDir).sort((a, b) => parseInt(a) - parseInt(b));
    expect(onDisk).toEqual(['4.yaml', '5.yaml', '6.yaml', '7.yaml', '8.yaml', '9.yaml', '10.yaml', '11.yaml', '12.yaml', '13.yaml', 'FORMAT', 'index.json']);
    expect(() => store.version(3)).toThrow(/config version 3 not found/);

    // After the prune, and in a fresh instance, the next id is still max + 1.
    const again = new ConfigStore(file);
    expect(again.save(text(13), { user: 'admin', note: '' }).id).toBe(14);
    expect(again.versions().map((v) => v.id)).toEqual([14, 13, 12, 11, 10, 9, 8, 7, 6, 5]);
  });

  it('honours a smaller keep and never prunes the running version', () => {
    const { file } = makeStore();
    fs.writeFileSync(file, text(0));
    const store = new ConfigStore(file, { keep: 2 });
    for (let i = 1; i <= 5; i++) store.save(text(i), { user: 'admin', note: '' });
    expect(store.versions().map((v) => v.id)).toEqual([6, 5]);
    expect(fs.readdirSync(`${file}.versions`).sort()).toEqual(['5.yaml', '6.yaml', 'FORMAT', 'index.json']);
    const one = new ConfigStore(file, { keep: 1 });
    fs.writeFileSync(file, text(8)); // changed by hand: the save keeps it as found, then prunes it
    const v = one.save(text(9), { user: 'admin', note: '' });
    expect(one.versions()).toEqual([{ ...v, running: true }]);
    expect(one.version(v.id)).toBe(text(9));
  });

  it('returns the exact text of a version, and refuses an unknown id naming it', () => {
    const { store, file } = makeStore();
    const tricky = '\uFEFFa: "quoted"\r\nb: |\n  multi\n  line\n\n\n# trailing comment  \t';
    fs.writeFileSync(file, tricky);
    store.save(text(1), { user: 'admin', note: '' });
    expect(store.version(1)).toBe(tricky);
    expect(() => store.version(99)).toThrow(/config version 99 not found \(kept: 1, 2\)/);
    expect(() => store.version(0)).toThrow(/config version 0 not found/);
    expect(() => store.version(-1)).toThrow(/config version -1 not found/);
    expect(() => store.version(1.5)).toThrow(/config version 1.5 not found/);
    expect(() => store.version(Number.NaN)).toThrow(/config version NaN not found/);
    expect(() => makeStore().store.version(1)).toThrow(/config version 1 not found \(kept: none\)/);
  });

  it('creates a missing directory; with no previous file the first text is version 1', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'data', 'nested', 'site.yaml');
    const store = new ConfigStore(file);
    expect(fs.existsSync(path.dirname(file))).toBe(false); // no I/O in the constructor
    expect(store.versions()).toEqual([]);
    expect(store.save(text(1), { user: 'admin', note: 'first' })).toMatchObject({ id: 1, note: 'first' });
    expect(fs.readFileSync(file, 'utf8')).toBe(text(1));
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(store.versions().map((v) => [v.id, v.running])).toEqual([[1, true]]);
    expect(store.save(text(2), { user: 'admin', note: 'second' }).id).toBe(2);
    expect(store.version(1)).toBe(text(1));
    expect(store.version(2)).toBe(text(2));
  });

  it('keeps the mode of an existing config file', () => {
    const { store, file } = makeStore();
    fs.writeFileSync(file, text(0));
    fs.chmodSync(file, 0o640);
    store.save(text(1), { user: 'admin', note: '' });
    expect(fs.statSync(file).mode & 0o777).toBe(0o640);
  });

  it('names the file when it cannot be read', () => {
    const { store, file } = makeStore();
    expect(() => store.read()).toThrow(file);
  });

  it('passes every kept text through redact; the running marker compares redacted texts', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'site.yaml');
    const redact = (t: string) => t.replace(/password: .*/g, 'password: (secret)');
    const store = new ConfigStore(file, { redact });
    fs.writeFileSync(file, 'password: hunter2\nx: 1\n');
    store.save('password: hunter2\nx: 2\n', { user: 'admin', note: '' });
    for (const f of fs.readdirSync(`${file}.versions`)) expect(fs.readFileSync(path.join(`${file}.versions`, f), 'utf8')).not.toContain('hunter2');
    expect(store.version(2)).toBe('password: (secret)\nx: 2\n');
    expect(fs.readFileSync(file, 'utf8')).toContain('hunter2');
    expect(store.runningId()).toBe(2);
  });

  it('never reuses the id of a version file left without an index entry (crash between steps)', () => {
    const { store, file, versionsDir } = makeStore();
    fs.writeFileSync(file, text(0));
    store.save(text(1), { user: 'admin', note: '' });
    fs.writeFileSync(path.join(versionsDir, '7.yaml'), 'orphan');
    expect(store.save(text(2), { user: 'admin', note: '' }).id).toBe(8);
    expect(store.version(8)).toBe(text(2));
    expect(fs.existsSync(path.join(versionsDir, '7.yaml'))).toBe(false); // not in the index: pruned
  });

  it('rebuilds a missing or broken index from the version files, finds the running one, and saving still works', () => {
    const { store, file, versionsDir } = makeStore();
    fs.writeFileSync(file, text(0));
    store.save(text(1), { user: 'admin', note: 'a' });
    store.save(text(2), { user: 'admin', note: 'b' });
    const index = path.join(versionsDir, 'index.json');
    for (const broken of ['{not json', '{"id":1}', '[{"id":"x"}]', '{"format":2,"running":"x","versions":[]}']) {
      fs.writeFileSync(index, broken);
      const vs = store.versions();
      expect(vs.map((v) => v.id)).toEqual([3, 2, 1]);
      expect(vs[0]!.note).toMatch(/recovered/);
      expect(vs.map((v) => v.running)).toEqual([true, false, false]);
      expect(store.version(1)).toBe(text(0));
    }
    fs.rmSync(index);
    expect(store.versions().map((v) => v.id)).toEqual([3, 2, 1]);
    expect(store.save(text(3), { user: 'admin', note: 'c' }).id).toBe(4);
    expect(indexOf(versionsDir).versions.map((v) => v.id)).toEqual([4, 3, 2, 1]);
    expect(indexOf(versionsDir).running).toBe(4);
  });
});

/** A store exactly as the code before issue 16 left it: for each change k, `<id>.yaml` holds the
 * text BEFORE change k, and index.json is an array of {id, ts, user, note}, newest first. */
function oldStore(file: string, texts: string[], notes: string[], opts: { firstId?: number; index?: boolean } = {}): void {
  const dir = `${file}.versions`;
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const first = opts.firstId ?? 1;
  // texts[i] is the config before change first+i; the last text is the file now.
  const entries = notes.map((note, i) => ({ id: first + i, ts: T0 + (first + i) * 1000, user: i % 2 ? 'admin' : 'tech', note }));
  entries.forEach((e, i) => fs.writeFileSync(path.join(dir, `${e.id}.yaml`), texts[i]!));
  if (opts.index !== false) fs.writeFileSync(path.join(dir, 'index.json'), `${JSON.stringify([...entries].reverse(), null, 2)}\n`);
  fs.writeFileSync(file, texts[notes.length]!);
}

describe('ConfigStore: converting a store written before issue 16', () => {
  it('moves every note onto the text its change produced; the oldest text becomes version 0, as found', () => {
    const { file, versionsDir } = makeStore();
    // Three changes: 8 -> 6 ("改为 6°C"), 6 -> 10, 10 -> 7. The old code stored "改为 6°C" on the text holding 8.
    oldStore(file, [FRIDGE(8), FRIDGE(6), FRIDGE(10), FRIDGE(7)], ['冷藏柜报警阈值改为 6°C', '夏季放宽到 10°C', '改为 7°C']);
    expect(fs.readFileSync(path.join(versionsDir, '1.yaml'), 'utf8')).toContain('above: 8'); // the bug, as found on the box
    const store = new ConfigStore(file);
    expect(store.migrate()).toBe(4);
    expect(store.migrate()).toBeNull(); // once
    const vs = store.versions();
    expect(vs.map((v) => [v.id, v.note, v.user, v.ts, v.running])).toEqual([
      [3, '改为 7°C', 'tech', T0 + 3000, true],
      [2, '夏季放宽到 10°C', 'admin', T0 + 2000, false],
      [1, '冷藏柜报警阈值改为 6°C', 'tech', T0 + 1000, false],
      [0, 'the config as found (before version 1)', '', 0, false],
    ]);
    expect(store.version(1)).toBe(FRIDGE(6));
    expect(store.version(2)).toBe(FRIDGE(10));
    expect(store.version(3)).toBe(FRIDGE(7));
    expect(store.version(0)).toBe(FRIDGE(8));
    expect(vs[3]!.kind).toBe('found');
    expect(fs.readFileSync(file, 'utf8')).toBe(FRIDGE(7)); // the config file itself untouched
    expect(fs.readdirSync(path.dirname(file)).sort()).toEqual(['site.yaml', 'site.yaml.versions']); // no .migrating / .old left
    expect(indexOf(versionsDir)).toMatchObject({ format: 2, running: 3 });
    // And the store goes on from there.
    const next = store.save(FRIDGE(5), { user: 'admin', note: '改为 5°C' });
    expect(next.id).toBe(4);
    expect(store.version(4)).toBe(FRIDGE(5));
    expect(store.versions().filter((v) => v.running).map((v) => v.id)).toEqual([4]);
  });

  it('an old store already pruned: the oldest kept text is version k0-1, and keep still holds', () => {
    const { file } = makeStore();
    const texts = Array.from({ length: 11 }, (_, i) => text(i + 2)); // before changes 3..12, then the file
    oldStore(file, texts, Array.from({ length: 10 }, (_, i) => `save ${i + 3}`), { firstId: 3 });
    const big = new ConfigStore(file, { keep: 20 });
    expect(big.migrate()).toBe(11);
    const vs = big.versions();
    expect(vs.map((v) => v.id)).toEqual([12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2]);
    expect(vs.at(-1)!.note).toBe('the config before version 3 (older versions were not kept)');
    for (const v of vs.slice(0, -1)) {
      expect(v.note).toBe(`save ${v.id}`);
      expect(big.version(v.id)).toBe(text(v.id));
    }
    expect(big.version(2)).toBe(text(2));

    // With the default keep of 10 the oldest is pruned in the conversion.
    const { file: file2 } = makeStore();
    oldStore(file2, texts, Array.from({ length: 10 }, (_, i) => `save ${i + 3}`), { firstId: 3 });
    const store = new ConfigStore(file2);
    expect(store.versions().map((v) => v.id)).toEqual([12, 11, 10, 9, 8, 7, 6, 5, 4, 3]); // converted on first use
    expect(store.versions()[0]!.running).toBe(true);
  });

  it('an old store whose index.json was lost, or whose config file is gone', () => {
    const { file } = makeStore();
    oldStore(file, [text(0), text(1), text(2)], ['a', 'b'], { index: false });
    const store = new ConfigStore(file);
    expect(store.versions().map((v) => [v.id, v.running])).toEqual([[2, true], [1, false], [0, false]]);
    expect(store.version(1)).toBe(text(1));
    expect(store.version(2)).toBe(text(2));
    expect(store.versions()[0]!.note).toMatch(/recovered/);

    const { file: gone } = makeStore();
    oldStore(gone, [text(0), text(1), text(2)], ['a', 'b']);
    fs.rmSync(gone);
    const s2 = new ConfigStore(gone);
    // What the last change produced is unknown: only what the old texts prove is kept.
    expect(s2.versions().map((v) => [v.id, v.note, v.running])).toEqual([[1, 'a', false], [0, 'the config as found (before version 1)', false]]);
    expect(s2.version(1)).toBe(text(1));
  });

  it('redacts while converting, and scrub() converts first', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'site.yaml');
    oldStore(file, ['password: p1\n', 'password: p2\n', 'password: p3\n'], ['a', 'b']);
    const store = new ConfigStore(file, { redact: (t) => t.replace(/password: .*/g, 'password: (secret)') });
    expect(store.scrub()).toBe(0); // converted, already redacted
    for (const f of fs.readdirSync(`${file}.versions`)) expect(fs.readFileSync(path.join(`${file}.versions`, f), 'utf8')).not.toMatch(/p[123]/);
    expect(store.versions().map((v) => v.id)).toEqual([2, 1, 0]);
  });

  it('a crash at any step of the conversion is finished or undone by the next use', () => {
    const setup = () => {
      const { file, versionsDir } = makeStore();
      oldStore(file, [text(0), text(1), text(2)], ['a', 'b']);
      return { file, versionsDir, mig: `${versionsDir}.migrating`, old: `${versionsDir}.old` };
    };
    const expectConverted = (file: string) => {
      const s = new ConfigStore(file);
      expect(s.versions().map((v) => [v.id, v.note])).toEqual([[2, 'b'], [1, 'a'], [0, 'the config as found (before version 1)']]);
      expect(s.version(2)).toBe(text(2));
      expect(s.version(1)).toBe(text(1));
      expect(s.version(0)).toBe(text(0));
      expect(fs.readdirSync(path.dirname(file)).sort()).toEqual(['site.yaml', 'site.yaml.versions']);
    };
    // 1. Crashed while building the new folder (no FORMAT yet): the old store is intact; redone.
    const a = setup();
    fs.mkdirSync(a.mig);
    fs.writeFileSync(path.join(a.mig, '1.yaml'), 'half');
    expectConverted(a.file);

    // 2. Crashed after the old folder was moved aside, the new one complete: finished.
    const b = setup();
    new ConfigStore(b.file).migrate(); // a complete conversion, then put it back as the crash left it
    fs.renameSync(b.versionsDir, b.mig);
    oldStore(b.file, [text(0), text(1), text(2)], ['a', 'b']);
    fs.renameSync(b.versionsDir, b.old);
    expectConverted(b.file);

    // 3. Crashed after the old folder was moved aside, the new one incomplete: undone, redone.
    const c = setup();
    fs.mkdirSync(c.mig);
    fs.writeFileSync(path.join(c.mig, 'index.json'), '{}');
    fs.renameSync(c.versionsDir, c.old);
    expectConverted(c.file);

    // 4. Crashed after the swap, before the old folder was removed: removed.
    const d = setup();
    fs.cpSync(d.versionsDir, d.old, { recursive: true });
    new ConfigStore(d.file).migrate();
    expect(fs.existsSync(d.old)).toBe(false);
    fs.cpSync(d.versionsDir, d.old, { recursive: true }); // a leftover beside a converted store
    expectConverted(d.file);
  });
});

describe('atomicWrite', () => {
  it('replaces a file whole and leaves no temp files behind', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'x.yaml');
    atomicWrite(file, 'one\n');
    expect(fs.readFileSync(file, 'utf8')).toBe('one\n');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const big = 'y'.repeat(3 * 1024 * 1024);
    atomicWrite(file, big, 0o644);
    expect(fs.readFileSync(file, 'utf8')).toBe(big);
    expect(fs.statSync(file).mode & 0o777).toBe(0o644);
    atomicWrite(file, '');
    expect(fs.readFileSync(file, 'utf8')).toBe('');
    expect(fs.readdirSync(dir)).toEqual(['x.yaml']);
  });

  it('replaces the file with a rename, so an open reader keeps the old content', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'x.yaml');
    atomicWrite(file, 'old\n');
    const before = fs.statSync(file).ino;
    const fd = fs.openSync(file, 'r');
    atomicWrite(file, 'new\n');
    expect(fs.readFileSync(fd, 'utf8')).toBe('old\n');
    fs.closeSync(fd);
    expect(fs.statSync(file).ino).not.toBe(before);
    expect(fs.readFileSync(file, 'utf8')).toBe('new\n');
  });

  it('cleans up its temp file and names the file when the write fails', () => {
    const dir = tmpDir();
    const target = path.join(dir, 'taken');
    fs.mkdirSync(path.join(target, 'inside'), { recursive: true }); // a non-empty directory: rename must fail
    expect(() => atomicWrite(target, 'text')).toThrow(/cannot write .*taken/);
    expect(fs.readdirSync(dir)).toEqual(['taken']);
    expect(() => atomicWrite(path.join(dir, 'missing-dir', 'f'), 'text')).toThrow(/missing-dir/);
  });

  it('writes through a symlink to its target', () => {
    const dir = tmpDir();
    const real = path.join(dir, 'real.yaml');
    const link = path.join(dir, 'site.yaml');
    fs.writeFileSync(real, 'old');
    fs.symlinkSync(real, link);
    atomicWrite(link, 'new');
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(real, 'utf8')).toBe('new');
    expect(fs.readdirSync(dir).sort()).toEqual(['real.yaml', 'site.yaml']);
  });
});
