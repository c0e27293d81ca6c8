// A small site config as text with comments, and its parsed form: the fixture of the config
// editing and apply-mode tests.
import { parseSiteConfig } from '../../src/config/site-config.js';
import { loadProfiles } from '../../src/config/profiles.js';
import { DRIVERS_DIR } from '../../src/config/paths.js';

const profiles = loadProfiles(DRIVERS_DIR);
export const TEXT = [
  '# Site of the test community',
  'site: { communityCode: "330106001001", gatewayId: gw-t }',
  'storage: { path: ./data/t.db }',
  'uplink: { url: mqtt://127.0.0.1:1884 }   # the platform',
  'buses:',
  '  - { id: lan, type: modbus-tcp, host: 127.0.0.1, port: 5020 }',
  'devices:',
  '  # the fridge in the canteen',
  '  - { id: fridge-1, facility: canteen, profile: r4dcb08, bus: lan, unitId: 1, pollMs: 5000 }',
  '',
].join('\n');
export const cfg = (t: string) => {
  const r = parseSiteConfig(t, profiles);
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.config;
};

