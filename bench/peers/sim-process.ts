// The simulated devices for the peer benchmark, in a process of their own so that their CPU
// is not counted for the gateway under test: the built-in simulator (SimServer), serving
// units 1..N of one profile on one loopback port. Prints {"port":P} when listening.
// Usage: node dist/bench/peers/sim-process.js PROFILE UNITS
import { DRIVERS_DIR } from '../../src/config/paths.js';
import { loadProfiles } from '../../src/config/profiles.js';
import { silentLogger } from '../../src/log.js';
import { seededRandom } from '../../src/sim/random.js';
import { SimServer } from '../../src/sim/sim-server.js';
import { SimulatedDevice } from '../../src/sim/simulated-device.js';

const [profileId = 'r4dcb08', unitsArg = '20'] = process.argv.slice(2);
const profile = loadProfiles(DRIVERS_DIR).get(profileId);
if (!profile) throw new Error(`no profile ${profileId}`);
const random = seededRandom(1);
const units = new Map<number, SimulatedDevice>();
for (let u = 1; u <= Number(unitsArg); u++) units.set(u, new SimulatedDevice(profile, random));
const server = new SimServer('127.0.0.1', 0, units, silentLogger());
await server.start();
process.stdout.write(`${JSON.stringify({ port: server.boundPort })}\n`);
const stop = () => {
  process.stdout.write(`${JSON.stringify({ requests: [...server.requests.values()].reduce((a, b) => a + b, 0) })}\n`);
  void server.stop().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
