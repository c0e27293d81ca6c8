// Where the package's own data lives, whether run from src/ (tests) or dist/src/ (built).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('package root not found');
    dir = up;
  }
  return dir;
}

export const PACKAGE_ROOT = findRoot();
export const DRIVERS_DIR = path.join(PACKAGE_ROOT, 'drivers');
export const DEFAULT_CONFIG = path.join(PACKAGE_ROOT, 'config', 'default.yaml');

export function packageVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}
