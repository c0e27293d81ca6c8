// The bus form's serial port list: read from a /dev tree (a temp folder standing for "/"), by-id
// names first with the tty each points to, then kernel names in a fixed order; nothing else.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { listSerialPorts } from '../../src/io/serial-ports.js';
import { tmpDir } from '../helpers/peers.js';

describe('serial ports', () => {
  it('lists /dev/serial/by-id first, then ttyUSB, ttyACM, ttyAMA, ttyS by number; ignores other devices', () => {
    const root = tmpDir('cgw-dev-');
    const dev = path.join(root, 'dev');
    fs.mkdirSync(path.join(dev, 'serial', 'by-id'), { recursive: true });
    for (const n of ['ttyS1', 'ttyS0', 'ttyUSB10', 'ttyUSB2', 'ttyACM0', 'ttyAMA0', 'tty0', 'null', 'ttyprintk']) fs.writeFileSync(path.join(dev, n), '');
    fs.symlinkSync('../../ttyUSB2', path.join(dev, 'serial', 'by-id', 'usb-FTDI_FT232R_A10K-if00-port0'));
    expect(listSerialPorts(root)).toEqual([
      { path: '/dev/serial/by-id/usb-FTDI_FT232R_A10K-if00-port0', kind: 'by-id', target: '/dev/ttyUSB2' },
      { path: '/dev/ttyUSB2', kind: 'tty' },
      { path: '/dev/ttyUSB10', kind: 'tty' },
      { path: '/dev/ttyACM0', kind: 'tty' },
      { path: '/dev/ttyAMA0', kind: 'tty' },
      { path: '/dev/ttyS0', kind: 'tty' },
      { path: '/dev/ttyS1', kind: 'tty' },
    ]);
  });

  it('is empty on a box without serial ports (no /dev/serial at all)', () => {
    const root = tmpDir('cgw-dev-');
    fs.mkdirSync(path.join(root, 'dev'));
    expect(listSerialPorts(root)).toEqual([]);
  });
});
