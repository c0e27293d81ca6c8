// The serial ports found on the box, for the bus form's picker. Read from the directories only:
// opening a port (even to probe it) could disturb a bus the running gateway holds. Stable names
// (/dev/serial/by-id, they survive replugs and reboots) come first, each with the tty it points
// to, then the kernel names of USB adapters, CDC-ACM devices, the Pi's UART and 8250 ports.
import fs from 'node:fs';
import path from 'node:path';

export interface SerialPort {
  path: string;
  /** 'by-id': a stable name; 'tty': a kernel name that can change when adapters are replugged. */
  kind: 'by-id' | 'tty';
  /** For a by-id name: the tty it resolves to now. */
  target?: string;
}

const TTY = /^tty(USB|ACM|AMA|S)(\d+)$/;
const ORDER = ['USB', 'ACM', 'AMA', 'S'];

/** `root` is "/" on the box (another folder in tests). */
export function listSerialPorts(root = '/'): SerialPort[] {
  const dev = path.join(root, 'dev');
  const byIdDir = path.join(dev, 'serial', 'by-id');
  const out: SerialPort[] = [];
  for (const name of readDir(byIdDir).sort()) {
    const p = path.join(byIdDir, name);
    let target: string | undefined;
    try {
      target = path.resolve(byIdDir, fs.readlinkSync(p));
    } catch {
      /* not a link: listed without its target */
    }
    out.push({ path: shown(root, p), kind: 'by-id', ...(target ? { target: shown(root, target) } : {}) });
  }
  const ttys = readDir(dev)
    .map((n) => ({ n, m: TTY.exec(n) }))
    .filter((x): x is { n: string; m: RegExpExecArray } => x.m !== null)
    .sort((a, b) => ORDER.indexOf(a.m[1]!) - ORDER.indexOf(b.m[1]!) || Number(a.m[2]) - Number(b.m[2]));
  for (const { n } of ttys) out.push({ path: shown(root, path.join(dev, n)), kind: 'tty' });
  return out;
}

function readDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** The path as the config names it (relative to the box's root). */
function shown(root: string, p: string): string {
  return root === '/' ? p : `/${path.relative(root, p)}`;
}
