// Client ids belong to the account that created the session (security review finding 3):
// another account or an anonymous client with the same client id is refused (CONNACK 2), the
// owner's queued messages stay the owner's, a live owner is not disconnected; deliveries are
// checked against the account's patterns as they are now; wildcards do not reach $SYS.
import { describe, expect, it } from 'vitest';
import type { AccessControl } from '../../src/broker/access.js';
import { sleep, waitFor } from '../helpers/peers.js';
import { RawClient, connectPacket } from './raw-mqtt.js';
import { APP_PASSWORD, account, appAccount, brokerSuite, connectClient, end, startBrokerWithAccess, subscribe, tryConnect } from './broker-helpers.js';

const suite = brokerSuite();
const { clients, url } = suite;
let access: AccessControl;
const app = { username: 'app', password: APP_PASSWORD };
const other = { username: 'other', password: 'other-pass-1' };

async function start(opts = {}): Promise<void> {
  ({ broker: suite.broker, access } = await startBrokerWithAccess(opts, [await account('other', ['apps/#', 'community/#']), await account('ops', ['#'])]));
}

/** Account app leaves a persistent session "shared" subscribed to apps/q at QoS 1, with one message queued. */
async function leaveSession(): Promise<void> {
  const a = await connectClient(url(), { ...app, clientId: 'shared', clean: false });
  await subscribe(a, 'apps/q', 1);
  await end(a);
  await suite.broker!.publishAsync('apps/q', 'for-app', { qos: 1 });
}

const codeOf = (r: { error?: Error }) => (r.error as (Error & { code?: number }) | undefined)?.code;

describe('client id bound to its account', () => {
  it("refuses another account's CONNECT with the id (CONNACK 2) and keeps the queued message for the owner", async () => {
    await start();
    await leaveSession();
    const b = await tryConnect(url(), { ...other, clientId: 'shared', clean: false });
    clients.push(b.client);
    expect(b.outcome).toBe('closed');
    expect(codeOf(b)).toBe(2);
    expect(suite.broker!.stats.loginRefusals.client_id_taken).toBe(1);

    const a = await connectClient(url(), { ...app, clientId: 'shared', clean: false });
    clients.push(a);
    await waitFor(() => a.received.length === 1, 3000, 'the owner gets its queued message');
    expect(a.received[0]).toEqual({ topic: 'apps/q', payload: 'for-app' });
  });

  it('refuses an anonymous clean CONNECT with the id: it neither wipes the session nor takes it', async () => {
    await start();
    await leaveSession();
    const anon = await tryConnect(url(), { clientId: 'shared', clean: true });
    clients.push(anon.client);
    expect(anon.outcome).toBe('closed');
    expect(codeOf(anon)).toBe(2);
    const a = await connectClient(url(), { ...app, clientId: 'shared', clean: false });
    clients.push(a);
    expect(a.options.clean).toBe(false);
    await waitFor(() => a.received.length === 1, 3000, 'the session survived');
  });

  it('does not let repeated takeover attempts disconnect a live owner', async () => {
    await start();
    const a = await connectClient(url(), { ...app, clientId: 'live' });
    clients.push(a);
    await subscribe(a, 'apps/live');
    for (let i = 0; i < 3; i++) {
      const b = await tryConnect(url(), { ...other, clientId: 'live' });
      clients.push(b.client);
      expect(codeOf(b)).toBe(2);
    }
    await suite.broker!.publishAsync('apps/live', 'still-here');
    await waitFor(() => a.received.length === 1, 3000, 'the owner still receives');
    expect(a.closed).toBe(false);
    // The owner itself may take its own id over (MQTT 3.1.1 section 3.1.4-2).
    const again = await connectClient(url(), { ...app, clientId: 'live' });
    clients.push(again);
    await waitFor(() => a.closed, 3000, 'the older connection of the owner closed');
  });

  it('a client that hangs up during its password check claims nothing: the id stays free for its owner', async () => {
    await start();
    // CleanSession 0 with the right password, gone before argon2 has answered.
    const raw = new RawClient(suite.broker!.port);
    await raw.connected();
    await raw.write(connectPacket('grab', 'app', APP_PASSWORD, 30, false));
    raw.socket.destroy();
    await sleep(300);
    const owner = await tryConnect(url(), { ...other, clientId: 'grab', clean: false });
    clients.push(owner.client);
    expect(owner.outcome).toBe('connected');
  });

  it('frees the id once the clean session ended', async () => {
    await start();
    const a = await connectClient(url(), { ...app, clientId: 'free' });
    await end(a);
    await waitFor(() => suite.broker!.stats.clients === 0, 3000, 'gone');
    const b = await connectClient(url(), { ...other, clientId: 'free' });
    clients.push(b);
  });

  it('checks each delivery against the account as it is now: a stored subscription of a tightened account delivers nothing', async () => {
    await start();
    const a = await connectClient(url(), { ...app, clientId: 'tight', clean: false });
    await subscribe(a, 'apps/#', 1);
    await subscribe(a, 'community/#', 1);
    await end(a);
    // A reload narrows app to community/# only.
    access.setAccounts([{ ...(await appAccount()), subscribe: ['community/#'] }, await account('other', ['apps/#'])]);
    await suite.broker!.publishAsync('apps/secret', 'no', { qos: 1 });
    await suite.broker!.publishAsync('community/gw/x', 'yes', { qos: 1 });
    const back = await connectClient(url(), { ...app, clientId: 'tight', clean: false });
    clients.push(back);
    await waitFor(() => back.received.length >= 1, 3000, 'the allowed message');
    await suite.broker!.publishAsync('apps/live-secret', 'no', { qos: 1 });
    await suite.broker!.publishAsync('community/gw/y', 'yes-2', { qos: 1 });
    await waitFor(() => back.received.length >= 2, 3000, 'the live allowed message');
    await sleep(100);
    expect(back.received.map((r) => r.payload)).toEqual(['yes', 'yes-2']);
  });

  it('keeps $SYS away from # and + (MQTT 3.1.1 section 4.7.2) unless an account names $SYS', async () => {
    ({ broker: suite.broker, access } = await startBrokerWithAccess({}, [await account('ops', ['#']), await account('sys', ['$SYS/#'])]));
    const ops = await connectClient(url(), { username: 'ops', password: 'ops-pass-1', clientId: 'ops' });
    const sys = await connectClient(url(), { username: 'sys', password: 'sys-pass-1', clientId: 'sys' });
    clients.push(ops, sys);
    expect(await subscribe(ops, '$SYS/#')).toBe(128);
    expect(await subscribe(ops, '#')).toBe(0);
    expect(await subscribe(sys, '$SYS/#')).toBe(0);
    // aedes publishes $SYS/<id>/new/clients when a client connects.
    const c = await connectClient(url(), { clientId: 'trigger' });
    clients.push(c);
    await waitFor(() => sys.received.some((r) => r.topic.startsWith('$SYS/')), 3000, 'the $SYS account sees $SYS');
    await suite.broker!.publishAsync('community/gw/z', 'z');
    await waitFor(() => ops.received.length >= 1, 3000, 'ops gets ordinary topics');
    expect(ops.received.every((r) => !r.topic.startsWith('$'))).toBe(true);
  });

  it('holds at most maxSessionsPerAccount persistent sessions per account: a new one expires the longest-offline', async () => {
    await start({ maxSessionsPerAccount: 2 });
    for (const id of ['s1', 's2', 's3']) {
      const c = await connectClient(url(), { ...app, clientId: id, clean: false });
      await subscribe(c, 'apps/q', 1);
      await end(c);
      await sleep(5); // distinct offline times
    }
    expect(suite.broker!.stats).toMatchObject({ persistentSessions: 2, expiredSessions: 1 });
    await suite.broker!.publishAsync('apps/q', 'm', { qos: 1 });
    expect(suite.broker!.stats.queuedMessages).toBe(2); // for s2 and s3 only
    const s1 = await connectClient(url(), { ...app, clientId: 's1', clean: false });
    clients.push(s1);
    await sleep(100);
    expect(s1.received).toEqual([]);
  });
});
