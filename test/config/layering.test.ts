// config is the ground floor: the io side reads profiles and configs, never the other way round
// (a config module importing io/ would pull the Modbus stack into check-config and the schema).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const DIR = path.resolve('src/config');

describe('src/config imports', () => {
  it('no module in src/config imports from src/io', () => {
    const offenders: string[] = [];
    for (const f of fs.readdirSync(DIR).filter((n) => n.endsWith('.ts'))) {
      const text = fs.readFileSync(path.join(DIR, f), 'utf8');
      for (const m of text.matchAll(/\bfrom\s+'([^']+)'/g)) {
        const target = path.resolve(DIR, m[1]!);
        if (m[1]!.startsWith('.') && target.startsWith(path.resolve('src/io') + path.sep)) offenders.push(`${f}: ${m[1]}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
