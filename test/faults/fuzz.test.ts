// Fault: bounded fuzz (fast-check) of config files and web API bodies. The daemon never
// crashes, never answers 500, and every refusal carries a clear error.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { parseSiteConfig } from '../../src/config/site-config.js';
import { loadProfiles } from '../../src/config/profiles.js';
import { DRIVERS_DIR } from '../../src/config/paths.js';
import { freePort } from '../helpers/peers.js';
import { baseConfig, makeApp, WebClient } from '../helpers/gateway.js';
import type { App } from '../../src/app.js';

const profiles = loadProfiles(DRIVERS_DIR);
let app: App;
let client: WebClient;
let validText: string;

beforeAll(async () => {
  const sim = await freePort();
  ({ app } = makeApp(
    baseConfig({
      buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: sim }],
      devices: [
        { id: 'fridge-1', facility: 'canteen', profile: 'r4dcb08', bus: 'lan', unitId: 1, pollMs: 500 },
        { id: 'io-1', facility: 'security', profile: 'advantech-adam-6050', bus: 'lan', unitId: 2, pollMs: 500 },
      ],
      simulator: { enabled: true, host: '127.0.0.1', port: sim, seed: 1 },
    }),
  ));
  await app.start();
  validText = app.configText;
  client = new WebClient(`http://127.0.0.1:${app.web.port}`);
  expect((await client.post('/api/setup', { password: 'fuzz-password-2026', setupCode: app.auth.setupCode })).status).toBe(200);
}, 60_000);

afterAll(async () => {
  await app?.stop();
});

/** Replaces the value at a random path of the valid config with a random value. */
function mutated(seedText: string) {
  const base = parse(seedText) as Record<string, unknown>;
  const paths: (string | number)[][] = [];
  const walk = (v: unknown, p: (string | number)[]) => {
    paths.push(p);
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...p, i]));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...p, k]);
  };
  walk(base, []);
  return fc.tuple(fc.constantFrom(...paths.filter((p) => p.length > 0)), fc.jsonValue({ maxDepth: 2 })).map(([p, value]) => {
    const copy = structuredClone(base);
    let o = copy as Record<string | number, unknown>;
    for (const k of p.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
    o[p.at(-1)!] = value;
    return stringify(copy);
  });
}

// "path: problem", the path in our own notation (site.name, devices[2].unitId, site[":"]), or
// "line N: ..." for YAML syntax.
const SEG = String.raw`(?:[A-Za-z_$][\w$-]*|\[(?:\d+|"(?:[^"\\]|\\.)*")\])`;
const ERROR_LINE = new RegExp(String.raw`^(?:\(top level\)|line \d+|${SEG}(?:\.?${SEG})*): \S`, 's');

describe('fault: fuzz', () => {
  it('config files: any text gives a config or a list of "path: problem" lines, never an exception', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 300 }), mutated(validText)), (text) => {
        const r = parseSiteConfig(text, profiles);
        if (!r.ok) {
          expect(r.errors.length).toBeGreaterThan(0);
          for (const e of r.errors) expect(e).toMatch(ERROR_LINE);
        }
      }),
      { numRuns: 600, seed: 20261126 },
    );
  });

  it('web API bodies: random JSON to every change endpoint gets a 4xx with an error, never a 500', async () => {
    const endpoints = ['/api/login', '/api/config/validate', '/api/config', '/api/config/rollback', '/api/devices/fridge-1/read', '/api/devices/io-1/write', '/api/logout'];
    let calls = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...endpoints), fc.jsonValue({ maxDepth: 3 }), async (url, body) => {
        // Logout would end the session the rest of the run needs: send it garbage only.
        const r = await client.post(url === '/api/logout' ? '/api/logout-not' : url, body);
        calls++;
        expect(r.status, `${url} ${JSON.stringify(body).slice(0, 200)}`).toBeLessThan(500);
        if (r.status >= 400) expect(typeof r.body.error, JSON.stringify(r.body)).toBe('string');
      }),
      { numRuns: 400, seed: 7 },
    );
    // Mutated but well-formed configs through apply: refused with field errors, or applied.
    await fc.assert(
      fc.asyncProperty(mutated(validText), async (text) => {
        const r = await client.post('/api/config/validate', { text });
        expect(r.status).toBe(200);
        if (!r.body.ok) for (const e of r.body.errors) expect(typeof e.message).toBe('string');
      }),
      { numRuns: 150, seed: 11 },
    );
    expect(calls).toBe(400);
    expect((await fetch(`${client.base}/healthz`)).status).toBe(200);
    expect(app.configText).toBe(validText); // no random body made a valid config
  }, 300_000);
});
