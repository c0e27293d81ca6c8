// Builds the simulated site from the config: every configured device whose Modbus TCP bus
// points at the simulator's address is served by a simulated device of its profile.
import type { SiteConfig } from '../config/site-schema.js';
import type { Profile } from '../config/profile-schema.js';
import type { Logger } from '../log.js';
import { seededRandom } from './random.js';
import { SimServer } from './sim-server.js';
import { SimulatedDevice } from './simulated-device.js';
import { SimulatedGpio, type GpioBehaviour } from './simulated-gpio.js';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

export function buildSimulator(config: SiteConfig, profiles: ReadonlyMap<string, Profile>, log: Logger): SimServer | null {
  const sim = config.simulator;
  if (!sim.enabled) return null;
  const random = seededRandom(sim.seed ?? Date.now());
  const served = new Set(
    config.buses
      .filter((b) => b.type === 'modbus-tcp' && b.port === sim.port && (b.host === sim.host || (LOOPBACK.has(b.host) && LOOPBACK.has(sim.host))))
      .map((b) => b.id),
  );
  const units = new Map<number, SimulatedDevice>();
  for (const d of config.devices) {
    if (!served.has(d.bus)) continue;
    const p = profiles.get(d.profile);
    if (p && !units.has(d.unitId)) units.set(d.unitId, new SimulatedDevice(p, random));
  }
  if (units.size === 0) log.warn({ port: sim.port }, 'simulator enabled but no configured device points at it');
  return new SimServer(sim.host, sim.port, units, log);
}

/** How a simulated input of each kind behaves: a contact is a door, an alarm input an
 * emergency call button, a counter a pulse output. */
const GPIO_BEHAVIOUR: Record<SiteConfig['gpio'][number]['kind'], GpioBehaviour> = { contact: { kind: 'door' }, alarm: { kind: 'button' }, counter: { kind: 'pulses', perMinute: 6 } };

/** With simulator.enabled and simulator.gpio, the GPIO inputs' lines are simulated (no header
 * is read); null otherwise. Same seed, same levels. */
export function simulatedGpio(config: SiteConfig): SimulatedGpio | null {
  const sim = config.simulator;
  if (!sim.enabled || !sim.gpio) return null;
  return new SimulatedGpio(sim.seed ?? Date.now(), { lines: new Map(config.gpio.map((g) => [g.line, GPIO_BEHAVIOUR[g.kind]])) });
}
