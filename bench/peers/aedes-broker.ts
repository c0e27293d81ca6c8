// The embedded broker under test, alone in its process: LocalBroker (aedes) with the
// gateway's AccessControl. Anonymous clients on loopback may subscribe to bench/#; the
// publishers log in as "bench" (argon2 hash, as localBroker.accounts are). Prints {"port":P}.
// SIGTERM stops it cleanly (so that `node --cpu-prof` writes its profile).
import { AccessControl, hashPassword } from '../../src/broker/access.js';
import { LocalBroker } from '../../src/broker/local-broker.js';
import { silentLogger } from '../../src/log.js';

const access = new AccessControl({
  anonymous: 'loopback',
  accounts: [{ username: 'bench', passwordHash: await hashPassword('bench'), publish: ['bench/#'], subscribe: ['bench/#'], personal: false }],
  personalTopics: new Set(),
  anonymousSubscribe: ['bench/#'],
});
// Every bench client connects from 127.0.0.1: the per-address cap (default 20) would count
// them all as one LAN host.
const broker = new LocalBroker({ host: '127.0.0.1', port: 0, maxConnectionsPerAddress: 200 }, silentLogger(), access);
await broker.start();
process.stdout.write(`${JSON.stringify({ port: broker.port })}\n`);
const stop = () => {
  const hard = setTimeout(() => process.exit(0), 3000);
  void broker.stop().finally(() => {
    clearTimeout(hard);
    process.exit(0);
  });
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
