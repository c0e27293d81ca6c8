// The serialport binding used for RS-485 lines: the stock Linux binding with one fix.
//
// When a tty is hung up (a USB adapter unplugged; the other end of a pty closed) the kernel
// answers every read() with 0 bytes (EOF) instead of an error. serialport 13's unixRead
// treats 0 bytes as "nothing yet" and reads again at once, forever: the port never reports
// the disconnect and a libuv thread spins at 100 % CPU. The port is opened raw with VMIN=1,
// so a read with no data gives EAGAIN, never 0; 0 therefore means the line is gone, and
// we turn it into a read error. The stream then closes the port with a DisconnectedError,
// which the transport reports as a drop and reopens with backoff.
import { read as fsRead } from 'node:fs';
import { promisify } from 'node:util';
import { autoDetect, LinuxBinding, type LinuxBindingInterface, type LinuxOpenOptions, type LinuxPortBinding } from '@serialport/bindings-cpp';
// unixRead takes its fs.read as a parameter; that is the seam this fix uses.
import { unixRead } from '@serialport/bindings-cpp/dist/unix-read.js';

const readAsync = promisify(fsRead);

export class SerialHangupError extends Error {
  readonly code = 'EHANGUP';
}

/** fs.read, except that 0 bytes from a tty is an error (see above). */
const readOrHangup: typeof readAsync = (async (fd: number, buffer: Buffer, offset: number, length: number, position: number | null) => {
  const r = await readAsync(fd, buffer, offset, length, position);
  if (r.bytesRead === 0 && length > 0) throw new SerialHangupError('serial line hung up (read returned end of file)');
  return r;
}) as typeof readAsync;

function hangupAware(port: LinuxPortBinding): LinuxPortBinding {
  const stockRead = port.read.bind(port);
  port.read = async (buffer, offset, length) => {
    // Let the stock method check its arguments and the open state, then do the read ourselves.
    if (!port.isOpen || buffer.length < offset + length) return stockRead(buffer, offset, length);
    return unixRead({ binding: port, buffer, offset, length, fsReadAsync: readOrHangup });
  };
  return port;
}

/** On Linux, LinuxBinding whose ports report a hang-up. Elsewhere (a developer's Mac) the
 * stock binding, typed as Linux's: the options we pass are common to both. */
export function serialBinding(): LinuxBindingInterface {
  if (process.platform !== 'linux') return autoDetect() as unknown as LinuxBindingInterface;
  return {
    ...LinuxBinding,
    async open(options: LinuxOpenOptions) {
      return hangupAware(await LinuxBinding.open(options));
    },
  };
}
