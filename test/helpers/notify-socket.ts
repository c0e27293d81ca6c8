// A stand-in for systemd's notify socket (/run/systemd/notify): an AF_UNIX datagram socket,
// made with unix-dgram (Node's own dgram has no unix sockets), that keeps every message.
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import path from 'node:path';
import { tmpDir } from './peers.js';

interface DgramSocket extends EventEmitter {
  bind(path: string): void;
  close(): void;
}
const unixDgram = createRequire(import.meta.url)('unix-dgram') as {
  createSocket(type: 'unix_dgram', listener?: (buf: Buffer) => void): DgramSocket;
};

export /** A stand-in for systemd's notify socket: every datagram received, as text. */
function receiver(): { path: string; got: string[]; close: () => void } {
  const sockPath = path.join(tmpDir('cgw-notify-'), 'notify');
  const got: string[] = [];
  const sock = unixDgram.createSocket('unix_dgram', (buf) => got.push(buf.toString()));
  let bindError: Error | null = null;
  sock.on('error', (err: Error) => (bindError = err));
  sock.bind(sockPath);
  if (bindError) throw bindError;
  return { path: sockPath, got, close: () => sock.close() };
}

