import fs from 'node:fs';
import path from 'node:path';
import { parseProfile } from '../../src/config/profiles.js';
import type { Profile } from '../../src/config/profile-schema.js';

export function fixtureProfile(id: string): Profile {
  const file = path.resolve('test/fixtures/profiles', `${id}.yaml`);
  return parseProfile(fs.readFileSync(file, 'utf8'), file);
}
