// The composition root (src/app.ts) builds the web server; the web side knows the application
// only by its interface (src/web/web-app.ts), so the import graph has no cycle through app.ts.
// src/messages is the floor below everything: the catalogue imports nothing of ours.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

function imports(dir: string): { file: string; target: string }[] {
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((n) => n.endsWith('.ts'))
    .flatMap((f) => [...fs.readFileSync(path.join(dir, f), 'utf8').matchAll(/\bfrom\s+'(\.[^']+)'/g)].map((m) => ({ file: path.join(dir, f), target: path.resolve(dir, path.dirname(f), m[1]!) })));
}

describe('module layering', () => {
  it('nothing in src/web imports src/app.ts', () => {
    const all = imports('src/web');
    expect(all.length).toBeGreaterThan(50); // the scan sees the imports at all
    expect(all.filter((i) => i.target === path.resolve('src/app.js')).map((i) => i.file)).toEqual([]);
  });

  it('src/messages imports only from itself', () => {
    const out = imports('src/messages').filter((i) => !i.target.startsWith(path.resolve('src/messages') + path.sep));
    expect(out).toEqual([]);
  });
});
