// Facilities and the province's codes in the site config: the community code's structure, house
// codes against site.houseCodePattern, facility references, and how a device is placed
// (src/config/facilities.ts, src/config/division-code.ts, the checks in site-config.ts).
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { DRIVERS_DIR } from '../../src/config/paths.js';
import { loadProfiles } from '../../src/config/profiles.js';
import { parseSiteConfig } from '../../src/config/site-config.js';
import { divisionCodeProblem, townshipKind } from '../../src/config/division-code.js';
import { allFacilities, facilityByDevice } from '../../src/config/facilities.js';
import { applyMode } from '../../src/config/apply-mode.js';

const profiles = loadProfiles(DRIVERS_DIR);

function config(over: Record<string, unknown> = {}, site: Record<string, unknown> = {}): string {
  return stringify({
    site: { communityCode: '330106001001', gatewayId: 'gw-fac', ...site },
    storage: { path: './data/gateway.db' },
    uplink: { url: 'mqtt://127.0.0.1:1884' },
    buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: 5020 }],
    facilities: [
      { id: 'canteen-north', type: 'canteen', name: '北食堂', houseCode: '3301060010010001' },
      { id: 'canteen-south', type: 'canteen', houseCode: '3301060010010002' },
      { id: 'nursery', type: 'childcare' },
    ],
    devices: [
      { id: 'fridge-n', facility: 'canteen-north', profile: 'r4dcb08', bus: 'lan', unitId: 1 },
      { id: 'fridge-s', facility: 'canteen-south', profile: 'r4dcb08', bus: 'lan', unitId: 2 },
      { id: 'air-1', facility: 'nursery', profile: 'aerasgard-rftm-lq-ps-co2-modbus', bus: 'lan', unitId: 3 },
      { id: 'io-1', facility: 'security', profile: 'advantech-adam-6050', bus: 'lan', unitId: 4 },
    ],
    gpio: [{ id: 'call-1', facility: 'elderly-care', kind: 'alarm', line: 17 }],
    ...over,
  });
}

function errors(text: string): string[] {
  const r = parseSiteConfig(text, profiles);
  return r.ok ? [] : r.errors;
}

describe('site.communityCode: the 12-digit statistical division code', () => {
  it('accepts communities of a 街道, a 镇, a 乡 and a 政企合一 unit, and names the township kind', () => {
    expect(divisionCodeProblem('330106001001')).toBeNull(); // 杭州 西湖区 北山街道
    expect(townshipKind('330106001001')).toBe('街道');
    expect(townshipKind('330603107001')).toBe('镇');
    expect(townshipKind('330603207201')).toBe('乡');
    expect(townshipKind('330603401001')).toBe('政企合一单位');
    expect(divisionCodeProblem('441900003001')).toBeNull(); // 东莞: a prefecture without counties (00)
  });

  it.each([
    ['33010600100', 'must be the 12-digit statistical division code'],
    ['3301060010a1', 'must be the 12-digit statistical division code'],
    ['990106001001', 'digits 1-2 ("99") are no province-level code'],
    ['330006001001', 'digits 3-4 ("00") must name a prefecture'],
    ['330106000001', 'digits 7-9 ("000") must be a township: 001-099 街道, 100-199 镇, 200-399 乡'],
    ['330106600001', 'digits 7-9 ("600") must be a township'],
    ['330106001000', 'digits 10-12 ("000") must name the community'],
  ])('%s is refused: %s', (code, message) => {
    expect(divisionCodeProblem(code)).toContain(message);
    const errs = errors(config({}, { communityCode: code }));
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(/^site\.communityCode: /);
    expect(errs[0]).toContain(message);
  });
});

describe('facilities and house codes', () => {
  it('a config with listed facilities, an unlisted type and a GPIO input validates; each device is placed', () => {
    const r = parseSiteConfig(config(), profiles);
    expect(r.ok ? [] : r.errors).toEqual([]);
    if (!r.ok) return;
    const by = facilityByDevice(r.config);
    expect(by.get('fridge-n')).toMatchObject({ facilityId: 'canteen-north', type: 'canteen', houseCode: '3301060010010001', name: '北食堂', listed: true });
    expect(by.get('air-1')).toEqual({ facilityId: 'nursery', type: 'childcare', listed: true });
    // A device naming a type, not a listed facility: the facility's id is the type id.
    expect(by.get('io-1')).toEqual({ facilityId: 'security', type: 'security', listed: false });
    expect(by.get('call-1')).toEqual({ facilityId: 'elderly-care', type: 'elderly-care', listed: false });
    expect(allFacilities(r.config).map((f) => f.facilityId)).toEqual(['canteen-north', 'canteen-south', 'nursery', 'security', 'elderly-care']);
  });

  it('a house code against the default pattern, and against site.houseCodePattern, is refused naming the field and the pattern', () => {
    const bad = config({ facilities: [{ id: 'canteen-north', type: 'canteen' }, { id: 'canteen-south', type: 'canteen' }, { id: 'nursery', type: 'childcare', houseCode: 'room 3/2' }] });
    expect(errors(bad).map((e) => e.replace('facilities[2]', 'facilities[0]'))).toEqual([expect.stringMatching(/^facilities\[0\]\.houseCode: "room 3\/2" does not match the default house code pattern \[A-Za-z0-9_-\]\{1,64\} \(set site\.houseCodePattern/)]);
    const pattern = '\\d{16}';
    expect(errors(config({}, { houseCodePattern: pattern }))).toEqual([]);
    const short = config({ facilities: [{ id: 'canteen-north', type: 'canteen', houseCode: '33010600100100' }, { id: 'nursery', type: 'childcare' }] }, { houseCodePattern: pattern });
    const errs = errors(short);
    expect(errs.filter((e) => e.startsWith('facilities[0].houseCode'))).toEqual([`facilities[0].houseCode: "33010600100100" does not match site.houseCodePattern ${pattern} (line 17)`]);
    // The pattern is matched whole: a longer code that contains 16 digits does not pass.
    const longer = config({ facilities: [{ id: 'canteen-north', type: 'canteen', houseCode: '3301060010010001X' }, { id: 'canteen-south', type: 'canteen' }, { id: 'nursery', type: 'childcare' }] }, { houseCodePattern: pattern });
    expect(errors(longer)).toEqual([expect.stringContaining('facilities[0].houseCode: "3301060010010001X" does not match site.houseCodePattern')]);
    expect(errors(config({}, { houseCodePattern: '([' }))).toEqual([expect.stringMatching(/^site\.houseCodePattern: must be a regular expression/)]);
    // A pattern that could take exponential time on a near-miss is refused; a plain repeat is fine.
    for (const slow of ['(\\d+)+', '(?:[A-Z]*-)*\\d', '(a|b{1,})+', '(\\d{2,})*']) {
      expect(errors(config({}, { houseCodePattern: slow })), slow).toEqual([expect.stringMatching(/^site\.houseCodePattern: must not repeat a group that itself repeats/)]);
    }
    for (const ok of ['\\d{16}', '(3301\\d{2})\\d{10}', '([0-9]{4})+']) expect(errors(config({}, { houseCodePattern: ok })), ok).toEqual([]);
  });

  it('refuses an unknown type, a facility id used twice, a type id of another type and a dangling device facility, each by name', () => {
    const text = config({
      facilities: [
        { id: 'nursery', type: 'kindergarten' },
        { id: 'nursery', type: 'childcare' },
        { id: 'canteen', type: 'health' },
      ],
      devices: [{ id: 'air-1', facility: 'nursery-2', profile: 'aerasgard-rftm-lq-ps-co2-modbus', bus: 'lan', unitId: 3 }],
      gpio: [],
    });
    const errs = errors(text);
    expect(errs).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^facilities\[0\]\.type: no facility type "kindergarten" \(party-service, health, childcare/),
        expect.stringMatching(/^facilities\[1\]\.id: "nursery" is already used by facilities\[0\]/),
        expect.stringMatching(/^facilities\[2\]\.id: "canteen" is the id of a facility type: a facility with this id must be of type "canteen"/),
        expect.stringMatching(/^devices\[0\]\.facility: no facility "nursery-2": name a facility of facilities \(nursery, canteen\) or a facility type/),
      ]),
    );
    expect(errs).toHaveLength(4);
  });

  it('a change of facilities or of the house code pattern reloads (no restart)', () => {
    const a = parseSiteConfig(config(), profiles);
    const b = parseSiteConfig(config({ facilities: [{ id: 'canteen-north', type: 'canteen', houseCode: 'X1' }, { id: 'canteen-south', type: 'canteen' }, { id: 'nursery', type: 'childcare' }] }, { houseCodePattern: '[A-Z]\\d+' }), profiles);
    if (!a.ok || !b.ok) throw new Error('configs must be valid');
    expect(applyMode(a.config, b.config)).toBe('reload');
  });
});
