// The highest remote bundle version used, in the state folder: read at start, written
// atomically before an apply, and never silently taken for "none" when it cannot be read.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RemoteVersionStore, REMOTE_STATE_FILE } from '../../src/remote/remote-state.js';
import { tmpDir } from '../helpers/peers.js';

describe('RemoteVersionStore', () => {
  it('none at first; a used version is on disk (0600) and read back by the next start; lower or equal ones cannot be used', () => {
    const dir = tmpDir('cgw-rv-');
    const a = new RemoteVersionStore(dir);
    a.load();
    expect(a.version).toBeNull();
    a.use(7, '0123456789abcdef', 1_000);
    expect(a.version).toBe(7);
    const file = path.join(dir, REMOTE_STATE_FILE);
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual({ format: 1, version: 7, keyId: '0123456789abcdef', ts: 1_000 });
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const b = new RemoteVersionStore(dir);
    b.load();
    expect(b.version).toBe(7);
    expect(() => b.use(7, 'x')).toThrow(/not above 7/);
    expect(() => b.use(3, 'x')).toThrow(/not above 7/);
    b.use(8, 'x');
    expect(b.version).toBe(8);
    // No temp files left beside it.
    expect(fs.readdirSync(dir)).toEqual([REMOTE_STATE_FILE]);
  });

  it('a damaged file is a start-up error naming the file and the field, not "no version" (which would open every old bundle to replay)', () => {
    const dir = tmpDir('cgw-rv-');
    const file = path.join(dir, REMOTE_STATE_FILE);
    fs.writeFileSync(file, '{"format":1,"vers');
    expect(() => new RemoteVersionStore(dir).load()).toThrow(new RegExp(`${file}: not JSON`));
    fs.writeFileSync(file, JSON.stringify({ format: 1, version: -2, keyId: 'k', ts: 0 }));
    expect(() => new RemoteVersionStore(dir).load()).toThrow(/version: /);
  });
});
