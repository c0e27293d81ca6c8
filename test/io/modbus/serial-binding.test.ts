import { afterEach, describe, expect, it } from 'vitest';
import { SerialHangupError, serialBinding } from '../../../src/io/modbus/serial-binding.js';
import { SocatLine } from '../../helpers/socat.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms))]);
}

describe('serial binding', () => {
  it('passes bytes through while the line is up', async () => {
    const line = await SocatLine.start();
    cleanups.push(() => line.stop());
    const port = await serialBinding().open({ path: line.a, baudRate: 9600 });
    cleanups.push(() => port.close());
    const dev = await serialBinding().open({ path: line.b, baudRate: 9600 });
    cleanups.push(() => dev.close());
    await dev.write(Buffer.from([1, 3, 2]));
    const r = await within(port.read(Buffer.alloc(16), 0, 16), 2000, 'read');
    expect([...r.buffer.subarray(0, r.bytesRead)]).toEqual([1, 3, 2]);
  });

  // A read started after the hang-up gets 0 bytes (end of file) from the kernel, every time;
  // the stock binding reads again at once and never returns. Ours fails the read.
  it('fails a read on a hung-up line instead of reading 0 bytes forever', async () => {
    const line = await SocatLine.start();
    cleanups.push(() => line.stop());
    const port = await serialBinding().open({ path: line.a, baudRate: 9600 });
    cleanups.push(() => port.close());
    await line.stop();
    const err = await within(port.read(Buffer.alloc(16), 0, 16), 2000, 'read after hang-up').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SerialHangupError);
    expect((err as Error).message).toBe('serial line hung up (read returned end of file)');
  });
});
