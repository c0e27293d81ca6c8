// Finds the message literals in our source that can reach the page: the message argument of
// the error classes the web server passes on, zod's custom messages, and `message:` / `error:`
// properties. A `${...}` inside a template literal becomes a sample word. A small tokenizer
// (strings, template literals, regex literals, brackets), enough for this codebase's style.
import fs from 'node:fs';

export interface Literal {
  file: string;
  line: number;
  text: string;
}

/** Index just past the string or template literal starting at `i`, and its text (placeholders
 * replaced by `sample`). */
function readLiteral(src: string, i: number, sample: string): [number, string] {
  const q = src[i]!;
  let out = '';
  i++;
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\\') {
      const n = src[i + 1]!;
      out += n === 'n' ? '\n' : n;
      i += 2;
      continue;
    }
    if (c === q) return [i + 1, out];
    if (q === '`' && c === '$' && src[i + 1] === '{') {
      i = skipBalanced(src, i + 1);
      out += sample;
      continue;
    }
    out += c;
    i++;
  }
  return [i, out];
}

function readRegex(src: string, i: number): number {
  let inClass = false;
  for (i++; i < src.length; i++) {
    const c = src[i]!;
    if (c === '\\') i++;
    else if (c === '[') inClass = true;
    else if (c === ']') inClass = false;
    else if (c === '/' && !inClass) break;
  }
  i++;
  while (/[a-z]/.test(src[i] ?? '')) i++;
  return i;
}

/** Walks code from `i`, stepping over string, template and regex literals whole; calls `visit`
 * with each other character and the bracket depth after it; stops when `visit` says so. */
function walkCode(src: string, i: number, visit: (i: number, c: string, depth: number) => boolean | void): number {
  let depth = 0;
  let prevSig = '(';
  for (; i < src.length; i++) {
    const c = src[i]!;
    if (c === "'" || c === '"' || c === '`') {
      i = readLiteral(src, i, '')[0] - 1;
      prevSig = 'x';
      continue;
    }
    if (c === '/' && '(,=:[!&|?{};'.includes(prevSig)) {
      i = readRegex(src, i) - 1;
      prevSig = 'x';
      continue;
    }
    if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c)) depth--;
    if (visit(i, c, depth)) return i;
    if (!/\s/.test(c)) prevSig = c;
  }
  return i;
}

/** From an opening bracket at `i`, the index just past its closing one. */
function skipBalanced(src: string, i: number): number {
  return walkCode(src, i, (_i, c, depth) => ')]}'.includes(c) && depth === 0) + 1;
}

/** The top-level arguments of the call whose '(' is at `open`, as source text. */
function args(src: string, open: number): string[] {
  const inner = src.slice(open + 1, skipBalanced(src, open) - 1);
  const out: string[] = [];
  let start = 0;
  walkCode(inner, 0, (i, c, depth) => {
    if (c === ',' && depth === 0) {
      out.push(inner.slice(start, i).trim());
      start = i + 1;
    }
  });
  if (inner.slice(start).trim()) out.push(inner.slice(start).trim());
  return out;
}

/** The text of `arg` when it is exactly one string or template literal. */
function literalOf(arg: string | undefined, sample: string): string | null {
  if (!arg || !`'"\``.includes(arg[0]!)) return null;
  const [end, text] = readLiteral(arg, 0, sample);
  return end === arg.length ? text : null;
}

/** Calls whose argument at the given position is a message. */
const CALLS: Record<string, number | 'last'> = {
  'new HttpError': 1,
  'new ModbusLinkError': 0,
  'new ModbusFrameError': 0,
  'new ModbusLineError': 1,
  'new DeviceCommandError': 0,
  'new ScanRefused': 1,
  'new EditError': 0,
  'new SetupError': 1,
  'new AccountError': 1,
  'new UnitsError': 0,
  'new CsvError': 0,
  'new GpioError': 0,
  fail: 0,
  '.int': 0,
  '.min': 'last',
  '.max': 'last',
  '.regex': 'last',
  '.refine': 'last',
  closeWith: 0,
};

/** Comments blanked (line numbers kept), strings and regex literals left alone. */
function stripComments(src: string): string {
  let out = '';
  let prevSig = '(';
  for (let i = 0; i < src.length; ) {
    const c = src[i]!;
    if (c === "'" || c === '"' || c === '`') {
      const end = readLiteral(src, i, '')[0];
      out += src.slice(i, end);
      i = end;
      prevSig = 'x';
    } else if (c === '/' && src[i + 1] === '/') {
      const end = src.indexOf('\n', i);
      const stop = end < 0 ? src.length : end;
      out += ' '.repeat(stop - i);
      i = stop;
    } else if (c === '/' && src[i + 1] === '*') {
      const stop = src.indexOf('*/', i) + 2;
      out += src.slice(i, stop).replace(/[^\n]/g, ' ');
      i = stop;
    } else if (c === '/' && '(,=:[!&|?{};'.includes(prevSig)) {
      const end = readRegex(src, i);
      out += src.slice(i, end);
      i = end;
      prevSig = 'x';
    } else {
      out += c;
      if (!/\s/.test(c)) prevSig = c;
      i++;
    }
  }
  return out;
}

export function messageLiterals(file: string, sample = 'v'): Literal[] {
  const src = stripComments(fs.readFileSync(file, 'utf8'));
  const found: Literal[] = [];
  const lineAt = (i: number) => src.slice(0, i).split('\n').length;
  for (const [call, pos] of Object.entries(CALLS)) {
    const re = new RegExp(`${call.replace('.', '\\.')}\\(`, 'g');
    for (const m of src.matchAll(re)) {
      const a = args(src, m.index + m[0].length - 1);
      if ((call === '.min' || call === '.max') && a.length < 2) continue;
      const text = literalOf(pos === 'last' ? a.at(-1) : a[pos], sample);
      if (text !== null) found.push({ file, line: lineAt(m.index), text });
    }
  }
  for (const m of src.matchAll(/\b(message|error|reason|note): (?=['`])/g)) {
    const start = m.index + m[0].length;
    const [, text] = readLiteral(src, start, sample);
    // `reason:` is mostly a keyword for the page's logic ("locked", "exists"); a sentence is a message.
    if (m[1] === 'reason' && !text.includes(' ')) continue;
    found.push({ file, line: lineAt(m.index), text });
  }
  return found;
}
