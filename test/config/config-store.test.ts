// ConfigStore and atomicWrite on real files in a fresh temporary directory per test: the
// previous text kept as a version on every save, pruning to the newest `keep` with ids that
// never repeat, exact texts back, unknown ids refused, no temp files left, missing
// directories created, and recovery from a lost or broken index.
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

describe('ConfigStore', () => {
  it('keeps the previous text as version 1 and makes the new text current', () => {
    const { store, file, clock, versionsDir } = makeStore();
    fs.writeFileSync(file, ORIGINAL);
    expect(store.file).toBe(file);
    expect(store.read()).toBe(ORIGINAL);
    expect(store.versions()).toEqual([]);

    clock.t = T0 + 5000;
    const v = store.save(text(1), { user: 'admin', note: '改轮询周期' });
    expect(v).toEqual({ id: 1, ts: T0 + 5000, user: 'admin', note: '改轮询周期' });
    expect(fs.readFileSync(file, 'utf8')).toBe(text(1));
    expect(store.read()).toBe(text(1));
    expect(store.versions()).toEqual([v]);
    expect(store.version(1)).toBe(ORIGINAL);
    expect(fs.readFileSync(path.join(versionsDir, '1.yaml'), 'utf8')).toBe(ORIGINAL);
    expect(JSON.parse(fs.readFileSync(path.join(versionsDir, 'index.json'), 'utf8'))).toEqual([v]);
    expect(fs.statSync(path.join(versionsDir, '1.yaml')).mode & 0o777).toBe(0o600);

    clock.t += 1000;
    const v2 = store.save(text(2), { user: 'admin', note: '' });
    expect(v2).toEqual({ id: 2, ts: T0 + 6000, user: 'admin', note: '' });
    expect(store.versions().map((x) => x.id)).toEqual([2, 1]);
    expect(store.version(2)).toBe(text(1));
    expect(store.version(1)).toBe(ORIGINAL);
    expect(store.read()).toBe(text(2));
  });

  it('keeps only the newest 10 versions over 12 saves, ids still increasing', () => {
    const { store, file, versionsDir } = makeStore();
    fs.writeFileSync(file, text(0));
    const ids: number[] = [];
    for (let i = 1; i <= 12; i++) ids.push(store.save(text(i), { user: 'admin', note: `save ${i}` })!.id);
    expect(ids).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const vs = store.versions();
    expect(vs.map((v) => v.id)).toEqual([12, 11, 10, 9, 8, 7, 6, 5, 4, 3]);
    expect(vs.map((v) => v.note)).toEqual([12, 11, 10, 9, 8, 7, 6, 5, 4, 3].map((i) => `save ${i}`));
    // Version n holds the text that save n replaced.
    for (const v of vs) expect(store.version(v.id)).toBe(text(v.id - 1));
    expect(store.read()).toBe(text(12));
    const onDisk = fs.readdirSync(versionsDir).sort((a, b) => parseInt(a) - parseInt(b));
    expect(onDisk).toEqual(['3.yaml', '4.yaml', '5.yaml', '6.yaml', '7.yaml', '8.yaml', '9.yaml', '10.yaml', '11.yaml', '12.yaml', 'index.json']);
    expect(() => store.version(2)).toThrow(/config version 2 not found/);

    // After the prune, and in a fresh instance, the next id is still max + 1.
    const again = new ConfigStore(file);
    expect(again.save(text(13), { user: 'admin', note: '' })?.id).toBe(13);
    expect(again.versions().map((v) => v.id)).toEqual([13, 12, 11, 10, 9, 8, 7, 6, 5, 4]);
  });

  it('honours a smaller keep', () => {
    const { file } = makeStore();
    fs.writeFileSync(file, text(0));
    const store = new ConfigStore(file, { keep: 2 });
    for (let i = 1; i <= 5; i++) store.save(text(i), { user: 'admin', note: '' });
    expect(store.versions().map((v) => v.id)).toEqual([5, 4]);
    expect(fs.readdirSync(`${file}.versions`).sort()).toEqual(['4.yaml', '5.yaml', 'index.json']);
  });

  it('returns the exact text of a version, and refuses an unknown id naming it', () => {
    const { store, file } = makeStore();
    const tricky = '\uFEFFa: "quoted"\r\nb: |\n  multi\n  line\n\n\n# trailing comment  \t';
    fs.writeFileSync(file, tricky);
    store.save(text(1), { user: 'admin', note: '' });
    expect(store.version(1)).toBe(tricky);
    expect(() => store.version(99)).toThrow(/config version 99 not found \(kept: 1\)/);
    expect(() => store.version(0)).toThrow(/config version 0 not found/);
    expect(() => store.version(-1)).toThrow(/config version -1 not found/);
    expect(() => store.version(1.5)).toThrow(/config version 1.5 not found/);
    expect(() => store.version(Number.NaN)).toThrow(/config version NaN not found/);
    expect(() => makeStore().store.version(1)).toThrow(/config version 1 not found \(kept: none\)/);
  });

  it('creates a missing directory and returns null when there was no previous file', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'data', 'nested', 'site.yaml');
    const store = new ConfigStore(file);
    expect(fs.existsSync(path.dirname(file))).toBe(false); // no I/O in the constructor
    expect(store.save(text(1), { user: 'admin', note: 'first' })).toBeNull();
    expect(fs.readFileSync(file, 'utf8')).toBe(text(1));
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(store.versions()).toEqual([]);
    expect(fs.existsSync(`${file}.versions`)).toBe(false);
    expect(store.save(text(2), { user: 'admin', note: 'second' })?.id).toBe(1);
    expect(store.version(1)).toBe(text(1));
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

  it('never reuses the id of a version file left without an index entry (crash between steps)', () => {
    const { store, file, versionsDir } = makeStore();
    fs.writeFileSync(file, text(0));
    store.save(text(1), { user: 'admin', note: '' });
    fs.writeFileSync(path.join(versionsDir, '7.yaml'), 'orphan');
    expect(store.save(text(2), { user: 'admin', note: '' })?.id).toBe(8);
    expect(store.version(8)).toBe(text(1));
    expect(fs.existsSync(path.join(versionsDir, '7.yaml'))).toBe(false); // not in the index: pruned
  });

  it('rebuilds a missing or broken index from the version files, and saving still works', () => {
    const { store, file, versionsDir } = makeStore();
    fs.writeFileSync(file, text(0));
    store.save(text(1), { user: 'admin', note: 'a' });
    store.save(text(2), { user: 'admin', note: 'b' });
    const index = path.join(versionsDir, 'index.json');
    for (const broken of ['{not json', '{"id":1}', '[{"id":"x"}]']) {
      fs.writeFileSync(index, broken);
      const vs = store.versions();
      expect(vs.map((v) => v.id)).toEqual([2, 1]);
      expect(vs[0]!.note).toMatch(/recovered/);
      expect(store.version(1)).toBe(text(0));
    }
    fs.rmSync(index);
    expect(store.versions().map((v) => v.id)).toEqual([2, 1]);
    expect(store.save(text(3), { user: 'admin', note: 'c' })?.id).toBe(3);
    expect(JSON.parse(fs.readFileSync(index, 'utf8')).map((v: { id: number }) => v.id)).toEqual([3, 2, 1]);
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
