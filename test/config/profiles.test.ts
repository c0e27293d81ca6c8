// "Devices as data": every file in drivers/ is a complete, self-describing device profile.
// The first block checks each shipped profile; the second proves the checker can fail.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { DRIVERS_DIR } from '../../src/config/paths.js';
import { checkProfileFile, loadProfiles, loadProfileSet, parseProfile, profileInvariants, ProfileError, profileOrigin } from '../../src/config/profiles.js';
import { parseSiteConfig } from '../../src/config/site-config.js';
import { FACILITY_TYPES_FILE, INDICATORS, loadFacilityTypes } from '../../src/config/facility-types.js';
import { chartablePoint, defaultChartPoint, type Point, type Profile } from '../../src/config/profile-schema.js';

// drivers/facility-types.yaml is the one file there that is not a device profile.
const FILES = fs.readdirSync(DRIVERS_DIR).filter((f) => f !== FACILITY_TYPES_FILE).sort();
const CJK = /[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]/;

function load(file: string): { text: string; profile: Profile } {
  const full = path.join(DRIVERS_DIR, file);
  const text = fs.readFileSync(full, 'utf8');
  return { text, profile: parseProfile(text, full) };
}

/** The comment lines at the top of a YAML file, before the first key. */
function leadingComment(text: string): string {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (/^\s*#/.test(line)) out.push(line.replace(/^\s*#\s?/, ''));
    else if (line.trim() === '' && out.length) out.push('');
    else break;
  }
  return out.join('\n');
}

/** Engineering-unit span the raw type can express (after scale/offset); undefined for floats. */
function typeRange(p: Point): { min: number; max: number } | undefined {
  const raw: Partial<Record<Point['type'], [number, number]>> = {
    int16: [-32768, 32767],
    uint16: [0, 65535],
    int32: [-2147483648, 2147483647],
    uint32: [0, 4294967295],
    bool: [0, 1],
    bit: [0, 1],
  };
  const r = raw[p.type];
  if (!r) return undefined;
  const a = r[0] * p.scale + p.offset;
  const b = r[1] * p.scale + p.offset;
  return { min: Math.min(a, b), max: Math.max(a, b) };
}

const isBinary = (p: Point) => p.type === 'bool' || p.type === 'bit' || p.register === 'coil' || p.register === 'discrete';

describe('drivers/facility-types.yaml: the shipped facility types', () => {
  const types = loadFacilityTypes(DRIVERS_DIR, null);

  it('ships the seven types of the programme, each with a code, both names and known indicators', () => {
    expect(types.ids()).toEqual(['party-service', 'health', 'childcare', 'elderly-care', 'canteen', 'women-children', 'security']);
    const codes = types.all().map((t) => t.code);
    expect(new Set(codes).size).toBe(codes.length);
    for (const t of types.all()) {
      expect(t.source).toBe('shipped');
      expect(Number(t.code)).toBeLessThan(50);
      expect(t.name.zh).toMatch(CJK);
      expect(t.indicators[0], `${t.id}: availability first`).toBe('availability');
      for (const i of t.indicators) expect(INDICATORS).toContain(i);
    }
  });

  it('every type has at least one shipped profile made for it (or only GPIO inputs and availability)', () => {
    const profiles = [...loadProfiles(DRIVERS_DIR).values()];
    const served = new Set(profiles.flatMap((p) => p.facilities));
    // The party-service centre has no device model of its own yet: it counts its GPIO inputs.
    expect(types.ids().filter((t) => !served.has(t))).toEqual(['party-service']);
  });

  it('a site file adds types with codes 50-99 and may not take a shipped id or a shipped code range', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgw-types-'));
    const write = (text: string) => fs.writeFileSync(path.join(dir, FACILITY_TYPES_FILE), text);
    write(stringify({ types: [{ id: 'library', code: '50', name: { zh: '社区书屋', en: 'Community library' }, indicators: ['availability'] }] }));
    const set = loadFacilityTypes(DRIVERS_DIR, dir);
    expect(set.get('library')).toMatchObject({ source: 'site', code: '50' });
    expect(set.ids()).toHaveLength(8);
    write(stringify({ types: [{ id: 'gym', code: '07', name: { zh: '健身房', en: 'Gym' }, indicators: ['availability'] }] }));
    expect(() => loadFacilityTypes(DRIVERS_DIR, dir)).toThrow('types[0].code: "07": a site\'s own types use codes 50-99');
    write(stringify({ types: [{ id: 'gym', code: '52', name: { zh: '健身房', en: 'Gym' }, indicators: ['availability', 'steps'] }] }));
    expect(() => loadFacilityTypes(DRIVERS_DIR, dir)).toThrow(/types\[0\]\.indicators\[1\]: must be one of .*availability/);
    write(stringify({ types: [{ id: 'canteen', code: '51', name: { zh: '食堂', en: 'Canteen' }, indicators: ['meals'] }] }));
    expect(() => loadFacilityTypes(DRIVERS_DIR, dir)).toThrow('types[0].id: "canteen" is a shipped facility type');
  });

  it('a profile naming an unknown facility type is refused when the profiles load, naming the file and field', () => {
    const s = siteDir({ 'acme-x1.yaml': stringify(rawProfile([pt('a')], { id: 'acme-x1', facilities: ['canteen', 'sauna'] })) });
    expect(loadError({ configFile: s.configFile })).toMatch(/acme-x1\.yaml:\n {2}facilities\[1\]: no facility type "sauna"/);
    // With the site's own type beside it, the same profile loads.
    fs.writeFileSync(path.join(s.drivers, FACILITY_TYPES_FILE), stringify({ types: [{ id: 'sauna', code: '60', name: { zh: '浴室', en: 'Bathhouse' }, indicators: ['availability'] }] }));
    expect(loadProfileSet({ configFile: s.configFile }).facilityTypes.get('sauna')?.source).toBe('site');
    expect(() => checkProfileFile(path.join(s.drivers, 'acme-x1.yaml'))).not.toThrow();
  });
});

describe('drivers/: every shipped profile', () => {
  it('there are at least 6 profiles, every file is *.yaml and loadProfiles loads them all', () => {
    expect(FILES.length).toBeGreaterThanOrEqual(6);
    // loadProfiles only reads *.yaml: a .yml or stray file would silently not be a driver.
    expect(FILES.filter((f) => !f.endsWith('.yaml'))).toEqual([]);
    const all = loadProfiles(DRIVERS_DIR);
    expect([...all.keys()].sort()).toEqual(FILES.map((f) => f.replace(/\.yaml$/, '')));
  });

  it.each(FILES)('%s', (file) => {
    const { text, profile: p } = load(file);

    // Every facility it is meant for is a shipped facility type.
    const types = loadFacilityTypes(DRIVERS_DIR, null);
    for (const f of p.facilities) expect(types.has(f), `${file}: facilities names "${f}"`).toBe(true);

    // Identity: the id is the file name.
    expect(p.id).toBe(file.replace(/\.yaml$/, ''));

    // The register map cites where it comes from, in the field and in the leading comment.
    expect(p.source.trim().length).toBeGreaterThan(0);
    const comment = leadingComment(text);
    expect(comment.length, 'file starts with a comment block').toBeGreaterThan(0);
    expect(comment).toMatch(/source/i);
    const tokens = p.source
      .toLowerCase()
      .split(/[\s,;()"]+/)
      .map((t) => t.replace(/[.:]+$/, ''))
      .filter((t) => t.length >= 5 && !['source', 'cross-checked', 'with', 'per'].includes(t));
    const lc = comment.toLowerCase();
    // At least half of the source's words (5+ letters: titles, URLs, document ids) appear in
    // the comment, and an "own" map says so there too.
    expect(tokens.length).toBeGreaterThan(0);
    const found = tokens.filter((t) => lc.includes(t));
    expect(found.length * 2, `leading comment mentions the source "${p.source}" (found: ${found.join(' ')})`).toBeGreaterThanOrEqual(tokens.length);
    if (/^own\b/i.test(p.source)) expect(lc).toMatch(/\bown\b/);

    // Names in both languages, the Chinese one in Chinese.
    expect(p.name.zh).toMatch(CJK);
    expect(p.name.en.trim()).not.toBe('');

    expect(p.points.length).toBeGreaterThanOrEqual(1);
    for (const pt of p.points) {
      const where = `${p.id}.${pt.id}`;
      expect(pt.name.zh.trim(), `${where} zh name`).not.toBe('');
      expect(pt.name.en.trim(), `${where} en name`).not.toBe('');
      expect(pt.name.zh, `${where} zh name has a CJK character`).toMatch(CJK);

      if (!isBinary(pt) && pt.privacy === 'public' && (pt.kind === 'gauge' || pt.kind === 'counter')) {
        expect(pt.range, `${where} numeric public ${pt.kind} needs a range`).toBeDefined();
      }
      if (pt.privacy === 'identifier') expect(pt.writable, `${where} identifier is never writable`).toBe(false);

      const span = pt.range ?? typeRange(pt);
      const sim = pt.simulate;
      if (sim) {
        if (sim.min !== undefined && sim.max !== undefined) expect(sim.min, `${where} simulate.min <= max`).toBeLessThanOrEqual(sim.max);
        for (const [k, v] of [
          ['min', sim.min],
          ['max', sim.max],
          ['value', sim.value],
        ] as const) {
          if (v === undefined || !span) continue;
          expect(v, `${where} simulate.${k} >= range.min`).toBeGreaterThanOrEqual(span.min);
          expect(v, `${where} simulate.${k} <= range.max`).toBeLessThanOrEqual(span.max);
        }
      }
    }

    expect(profileInvariants(p)).toEqual([]);

    // The chart's first series (docs/PROFILES.md, mainPoint): a public, chartable point, and
    // the profile's mainPoint when it names one. Every shipped model has one to chart.
    const first = p.points.find((x) => x.id === defaultChartPoint(p));
    expect(first, `${p.id} has a point the chart shows first`).toBeDefined();
    expect(first!.privacy).toBe('public');
    expect(chartablePoint(first!)).toBe(true);
    if (p.mainPoint !== undefined) expect(first!.id, `${p.id}.mainPoint is what the chart shows first`).toBe(p.mainPoint);
  });

  it('the gas detector charts its concentration first, the energy meter its power (mainPoint)', () => {
    // Their first chartable points are the raw ADC count and the voltage: not what a technician looks for.
    expect(defaultChartPoint(load('evikon-e2648-ch4.yaml').profile)).toBe('gas_concentration');
    expect(defaultChartPoint(load('eastron-sdm120-modbus.yaml').profile)).toBe('active_power');
    expect(defaultChartPoint(load('advantech-adam-6050.yaml').profile)).toBe('meal_counter');
    // A site that tightens the main point to personal: the chart falls back to the next public one.
    const gas = load('evikon-e2648-ch4.yaml').profile;
    const tightened = { ...gas, points: gas.points.map((x) => (x.id === 'gas_concentration' ? { ...x, privacy: 'personal' as const } : x)) };
    expect(defaultChartPoint(tightened)).toBe('gas_sensor_raw');
  });

  it('fc-health-kiosk-v1 exists with personal, identifier and counter points', () => {
    expect(FILES).toContain('fc-health-kiosk-v1.yaml');
    const { profile: k } = load('fc-health-kiosk-v1.yaml');
    expect(k.points.filter((p) => p.privacy === 'personal').length).toBeGreaterThanOrEqual(1);
    expect(k.points.filter((p) => p.privacy === 'identifier').length).toBeGreaterThanOrEqual(1);
    expect(k.points.filter((p) => p.kind === 'counter').length).toBeGreaterThanOrEqual(1);
    expect(k.points.find((p) => p.id === 'resident_card_uid')?.privacy).toBe('identifier');
    expect(k.points.find((p) => p.id === 'measurement_count')?.kind).toBe('counter');
  });
});

// ---------------------------------------------------------------------------------------------
// The checker itself must be able to fail.

type RawPoint = Record<string, unknown>;

function pt(id: string, over: RawPoint = {}): RawPoint {
  return { id, name: { zh: '测试点', en: `Point ${id}` }, register: 'holding', address: 0, type: 'uint16', privacy: 'public', ...over };
}

function rawProfile(points: RawPoint[], over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'neg-test',
    manufacturer: 'test',
    model: 'negative',
    name: { zh: '反例', en: 'Negative example' },
    source: 'own, test',
    facilities: ['canteen'],
    transports: ['modbus-tcp'],
    points,
    ...over,
  };
}

/** The problems parseProfile reports for this profile text (empty when it parses). */
function problemsOf(text: string, file = '/drivers/neg-test.yaml'): string[] {
  try {
    parseProfile(text, file);
    return [];
  } catch (err) {
    expect(err).toBeInstanceOf(ProfileError);
    return (err as ProfileError).problems;
  }
}

const problems = (points: RawPoint[], over: Record<string, unknown> = {}) => problemsOf(stringify(rawProfile(points, over)));

describe('profile checker: negative cases', () => {
  it('a well-formed test profile passes (control)', () => {
    expect(problems([pt('a', { type: 'int32' }), pt('b', { address: 2 }), pt('c', { register: 'input', address: 0 })])).toEqual([]);
  });

  it('reports two overlapping points, naming both', () => {
    const errs = problems([pt('wide', { type: 'int32', address: 0 }), pt('narrow', { type: 'uint16', address: 1 })]);
    expect(errs).toHaveLength(1);
    expect(errs[0]).toBe('points[1] "narrow" overlaps points[0] "wide" (holding 1..1)');
    // The same through profileInvariants on an already parsed profile.
    const parsed = parseProfile(stringify(rawProfile([pt('wide', { type: 'int32' }), pt('other', { address: 2 })])), '/drivers/neg-test.yaml');
    parsed.points[1]!.address = 1;
    expect(profileInvariants(parsed)).toEqual(['points[1] "other" overlaps points[0] "wide" (holding 1..1)']);
  });

  it('overlap is per register kind, and distinct bits of one register do not overlap', () => {
    expect(problems([pt('a', { type: 'int32' }), pt('b', { register: 'input', address: 1 })])).toEqual([]);
    expect(problems([pt('b0', { type: 'bit', bit: 0, address: 8 }), pt('b1', { type: 'bit', bit: 1, address: 8 })])).toEqual([]);
    const same = problems([pt('b0', { type: 'bit', bit: 3, address: 8 }), pt('again', { type: 'bit', bit: 3, address: 8 })]);
    expect(same).toHaveLength(1);
    expect(same[0]).toMatch(/^points\[1\] "again" overlaps points\[0\] "b0"/);
  });

  it('reports a duplicated point id', () => {
    expect(problems([pt('temp', { address: 0 }), pt('temp', { address: 1 })])).toEqual(['points[1].id: "temp" is used twice']);
  });

  it('reports a point inside a declared hole', () => {
    const errs = problems([pt('ok', { address: 0 }), pt('in_hole', { type: 'uint32', address: 4 })], { holes: [{ register: 'holding', from: 5, to: 6 }] });
    expect(errs).toEqual(['points[1] "in_hole" lies in holes[0]']);
    // A hole of another register kind at the same addresses is no problem.
    expect(problems([pt('x', { type: 'uint32', address: 4 })], { holes: [{ register: 'input', from: 5, to: 6 }] })).toEqual([]);
  });

  it('reports type bit without a bit number', () => {
    const errs = problems([pt('flag', { type: 'bit' })]);
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(/^points\[0\]\.bit: type "bit" needs bit: 0\.\.15 \(line \d+\)$/);
  });

  it('reports a coil with a register type', () => {
    const errs = problems([pt('relay', { register: 'coil', type: 'int16' })]);
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(/^points\[0\]\.type: a coil point must have type bool/);
  });

  it('reports writable input registers and discrete inputs, not writable holding registers', () => {
    expect(problems([pt('setpoint', { register: 'input', writable: true })])).toEqual(['points[0].writable: input registers are read-only in Modbus']);
    expect(problems([pt('door', { register: 'discrete', type: 'bool', writable: true })])).toEqual(['points[0].writable: discrete registers are read-only in Modbus']);
    expect(problems([pt('setpoint', { register: 'holding', writable: true })])).toEqual([]);
  });

  it('reports an unknown key in a point with its path and line', () => {
    const text = [
      'id: neg-test', // 1
      'manufacturer: test', // 2
      'model: negative', // 3
      'name: { zh: 反例, en: Negative example }', // 4
      'source: own, test', // 5
      'facilities: [canteen]', // 6
      'transports: [modbus-tcp]', // 7
      'points:', // 8
      '  - id: lamp', // 9
      '    name: { zh: 灯, en: Lamp }', // 10
      '    register: holding', // 11
      '    address: 0', // 12
      '    type: uint16', // 13
      '    privacy: public', // 14
      '    colour: red', // 15
      '',
    ].join('\n');
    const errs = problemsOf(text);
    expect(errs).toHaveLength(1);
    // Named at the key itself, with the key's own line.
    expect(errs[0]).toBe('points[0].colour: unknown key (line 15)');
  });

  it('reports an id that differs from the file name', () => {
    expect(problems([pt('a')], { id: 'neg-test' })).toEqual([]);
    const errs = problemsOf(stringify(rawProfile([pt('a')])), '/somewhere/drivers/other-name.yaml');
    expect(errs).toEqual(['id: "neg-test" must equal the file name "other-name"']);
  });

  it('reports a mainPoint that is not a public, chartable point, with its line', () => {
    const pts = [pt('level', { unit: '%' }), pt('card', { address: 1, privacy: 'identifier', kind: 'state' }), pt('door', { register: 'discrete', type: 'bool', kind: 'state' }), pt('mode', { address: 2, kind: 'state' })];
    expect(problems(pts, { mainPoint: 'level' })).toEqual([]);
    expect(problems(pts, { mainPoint: 'nothing' })).toEqual([expect.stringMatching(/^mainPoint: no point "nothing" \(line \d+\)$/)]);
    expect(problems(pts, { mainPoint: 'card' })).toEqual([expect.stringMatching(/^mainPoint: "card" is identifier data: the page never charts it/)]);
    expect(problems(pts, { mainPoint: 'door' })).toEqual([expect.stringMatching(/^mainPoint: "door" is a state point/)]);
    expect(problems(pts, { mainPoint: 'mode' })).toEqual([expect.stringMatching(/^mainPoint: "mode" is a state point/)]);
    expect(problems([pt('flag', { type: 'bit', bit: 0 })], { mainPoint: 'flag' })).toEqual([expect.stringMatching(/^mainPoint: "flag" is a bit point/)]);
  });

  it('a ProfileError names the file', () => {
    expect(() => parseProfile(stringify(rawProfile([pt('a'), pt('a', { address: 1 })])), '/x/neg-test.yaml')).toThrow(/^\/x\/neg-test\.yaml:\n {2}points\[1\]\.id/);
  });
});

// ---------------------------------------------------------------------------------------------
// Site profiles: drivers/ beside the config file, loaded with the shipped ones.

const SITE_FIXTURE = path.resolve('test/fixtures/site-drivers/acme-cr10.yaml');

/** A site folder: a config file path and its drivers/ with the given files (name -> text). */
function siteDir(files: Record<string, string> = {}): { configFile: string; drivers: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgw-site-'));
  const drivers = path.join(dir, 'drivers');
  fs.mkdirSync(drivers);
  for (const [n, text] of Object.entries(files)) fs.writeFileSync(path.join(drivers, n), text);
  return { configFile: path.join(dir, 'site.yaml'), drivers };
}

/** The message loadProfileSet throws (fails the test when it does not throw). */
function loadError(opts: Parameters<typeof loadProfileSet>[0]): string {
  try {
    loadProfileSet(opts);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('loadProfileSet did not throw');
}

const siteProfileText = (id: string, points: RawPoint[] = [pt('a')]) => stringify(rawProfile(points, { id }));

describe('site profiles: loadProfileSet', () => {
  it('loads drivers/ beside the config file with the shipped profiles, recording where each came from', () => {
    const s = siteDir({ 'acme-cr10.yaml': fs.readFileSync(SITE_FIXTURE, 'utf8') });
    const set = loadProfileSet({ configFile: s.configFile });
    expect(set.siteDir).toBe(s.drivers);
    expect([...set.keys()].sort()).toEqual([...FILES.map((f) => f.replace(/\.yaml$/, '')), 'acme-cr10'].sort());
    expect(set.origins.get('acme-cr10')).toEqual({ source: 'site', file: path.join(s.drivers, 'acme-cr10.yaml') });
    expect(set.origins.get('xy-md02')).toEqual({ source: 'shipped', file: path.join(DRIVERS_DIR, 'xy-md02.yaml') });
    expect(set.ids('site')).toEqual(['acme-cr10']);
    expect(profileOrigin(set, 'acme-cr10')?.source).toBe('site');
    // The Profile itself is what the file says: its `source` is still the register map's.
    expect(set.get('acme-cr10')!.source).toBe('own, test fixture');
    // A plain Map (as tests build) knows no origins.
    expect(profileOrigin(loadProfiles(DRIVERS_DIR), 'xy-md02')).toBeUndefined();
  });

  it('a device using a site profile validates against the set, and not against the shipped ones alone', () => {
    const s = siteDir({ 'acme-cr10.yaml': fs.readFileSync(SITE_FIXTURE, 'utf8') });
    const cfg = stringify({
      site: { communityCode: '330106001001', gatewayId: 'gw-site' },
      storage: { path: path.join(path.dirname(s.configFile), 'gateway.db') },
      uplink: { url: 'mqtt://127.0.0.1:1884' },
      buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: 5020 }],
      devices: [{ id: 'cold-1', facility: 'canteen', profile: 'acme-cr10', bus: 'lan', unitId: 1, privacy: { door_open: 'personal' } }],
    });
    const ok = parseSiteConfig(cfg, loadProfileSet({ configFile: s.configFile }));
    expect(ok.ok ? ok.config.devices[0]!.profile : ok.errors).toBe('acme-cr10');
    const shippedOnly = parseSiteConfig(cfg, loadProfileSet());
    expect(shippedOnly.ok ? [] : shippedOnly.errors[0]).toMatch(/^devices\[0\]\.profile: no profile "acme-cr10"/);
  });

  it('a missing site folder means no site profiles', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgw-site-'));
    const set = loadProfileSet({ configFile: path.join(dir, 'site.yaml') });
    expect(set.siteDir).toBe(path.join(dir, 'drivers'));
    expect(set.ids('site')).toEqual([]);
    expect(set.size).toBe(FILES.length);
    expect(loadProfileSet().siteDir).toBeNull();
  });

  it('a site profile with a shipped id is refused, naming both files', () => {
    const s = siteDir({ 'xy-md02.yaml': fs.readFileSync(path.join(DRIVERS_DIR, 'xy-md02.yaml'), 'utf8') });
    const msg = loadError({ configFile: s.configFile });
    expect(msg).toBe(
      [
        'invalid device profiles:',
        `${path.join(s.drivers, 'xy-md02.yaml')}:`,
        `  id: "xy-md02" is the id of the shipped profile ${path.join(DRIVERS_DIR, 'xy-md02.yaml')}: a site profile cannot replace a shipped one; give it an id (and file name) of its own`,
      ].join('\n'),
    );
  });

  it('the built-in GPIO profile ids are taken too', () => {
    const s = siteDir({ 'gpio-contact.yaml': siteProfileText('gpio-contact') });
    expect(loadError({ configFile: s.configFile })).toContain(`${path.join(s.drivers, 'gpio-contact.yaml')}:\n  id: "gpio-contact" is the built-in profile of GPIO inputs`);
  });

  it('lists every bad site file in one error, each with its path and field', () => {
    const s = siteDir({
      'good-one.yaml': siteProfileText('good-one'),
      'bad-field.yaml': siteProfileText('bad-field', [pt('a', { type: 'bit' })]),
      'bad-overlap.yaml': siteProfileText('bad-overlap', [pt('wide', { type: 'int32' }), pt('narrow', { address: 1 })]),
      'wrong-name.yaml': siteProfileText('other-id'),
      'typo.yml': siteProfileText('typo'),
      '.#good-one.yaml': 'an editor lock, skipped',
      'README.txt': 'not a profile, skipped',
    });
    const msg = loadError({ configFile: s.configFile });
    const f = (n: string) => path.join(s.drivers, n);
    expect(msg).toMatch(new RegExp(`${escape(f('bad-field.yaml'))}:\\n  points\\[0\\]\\.bit: type "bit" needs bit: 0\\.\\.15 \\(line \\d+\\)`));
    expect(msg).toContain(`${f('bad-overlap.yaml')}:\n  points[1] "narrow" overlaps points[0] "wide" (holding 1..1)`);
    expect(msg).toContain(`${f('wrong-name.yaml')}:\n  id: "other-id" must equal the file name "wrong-name"`);
    expect(msg).toContain(`${f('typo.yml')}:\n  file name: only *.yaml files are loaded: rename it to typo.yaml`);
    expect(msg).not.toContain('good-one');
    expect(msg).not.toContain('README');
    expect(msg.split('\n').filter((l) => !l.startsWith('  ')).length).toBe(1 + 4); // the header and four files
  });

  it('a site "drivers" that is not a folder is an error naming it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgw-site-'));
    fs.writeFileSync(path.join(dir, 'drivers'), 'not a folder');
    expect(loadError({ configFile: path.join(dir, 'site.yaml') })).toBe(`invalid device profiles:\n${path.join(dir, 'drivers')}: cannot read the site profile folder (not a folder)`);
  });

  it('a config file in the package root does not load the shipped folder twice as site profiles', () => {
    const set = loadProfileSet({ configFile: path.join(DRIVERS_DIR, '..', 'site.yaml') });
    expect(set.siteDir).toBeNull();
    expect(set.ids('site')).toEqual([]);
    expect(set.size).toBe(FILES.length);
  });
});

describe('site profiles: checkProfileFile (check-profile)', () => {
  it('accepts a site profile and a shipped file as itself', () => {
    expect(checkProfileFile(SITE_FIXTURE).origin).toEqual({ source: 'site', file: SITE_FIXTURE });
    const shipped = path.join(DRIVERS_DIR, 'r4dcb08.yaml');
    expect(checkProfileFile(shipped).origin.source).toBe('shipped');
  });

  it('refuses a copy of a shipped profile elsewhere, naming both files', () => {
    const s = siteDir({ 'r4dcb08.yaml': fs.readFileSync(path.join(DRIVERS_DIR, 'r4dcb08.yaml'), 'utf8') });
    const file = path.join(s.drivers, 'r4dcb08.yaml');
    expect(() => checkProfileFile(file)).toThrow(`${file}:\n  id: "r4dcb08" is the id of the shipped profile ${path.join(DRIVERS_DIR, 'r4dcb08.yaml')}`);
  });

  it('refuses a file the folder loader would not load, and an unreadable one', () => {
    const s = siteDir({ 'typo.yml': siteProfileText('typo') });
    expect(() => checkProfileFile(path.join(s.drivers, 'typo.yml'))).toThrow('file name: must be "typo.yaml" (only *.yaml files are loaded)');
    expect(() => checkProfileFile(path.join(s.drivers, 'nope.yaml'))).toThrow(/nope\.yaml:\n {2}cannot read: ENOENT/);
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
