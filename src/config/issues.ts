// Turns zod issues into one line each, "path: problem", with the YAML line where known,
// e.g. "devices[2].unitId: must be 1..247 (line 14)".
import type { z } from 'zod';
import { isMap, isSeq, LineCounter, type Document } from 'yaml';
import { identify, text } from '../messages/identify.js';

export type Path = readonly PropertyKey[];

export function formatPath(path: Path): string {
  let out = '';
  for (const k of path) {
    if (typeof k === 'number') out += `[${k}]`;
    // A key that is not a plain name (":", "a b", "") is quoted, so the path stays readable.
    else if (!/^[A-Za-z_$][\w$-]*$/.test(String(k))) out += `[${JSON.stringify(String(k))}]`;
    else out += out ? `.${String(k)}` : String(k);
  }
  return out || '(top level)';
}

/** One issue may name several problems (unknown keys): one message each, at the key itself. */
export function issueMessages(issue: z.core.$ZodIssue): { path: Path; message: string }[] {
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((k) => ({ path: [...issue.path, k], message: text('config.unknown-key', {}) }));
    case 'invalid_type':
      if (issue.input === undefined) return [{ path: issue.path, message: text('config.required', {}) }];
      // Our own messages ("must be a whole number 1..247") say more than zod's default.
      if (issue.expected === 'int') return [{ path: issue.path, message: issue.message }];
      return [{ path: issue.path, message: text('config.wrong-type', { expected: issue.expected, got: describe(issue.input) }) }];
    case 'invalid_value':
      return [{ path: issue.path, message: text('config.one-of', { values: issue.values.map((v) => JSON.stringify(v)).join(', ') }) }];
    default:
      // Our own messages come from the catalogue; zod's built-in English ones are replaced by
      // the catalogue's, so the page can show every check in Chinese (src/messages/).
      // Only zod's own wording is replaced: a rule's own message says more, catalogued or not
      // (test/messages/catalog.test.ts asks for its code).
      if (identify(issue.message).code !== 'untranslated' || !ZOD_WORDING.test(issue.message)) return [{ path: issue.path, message: issue.message }];
      return [{ path: issue.path, message: builtIn(issue) }];
  }
}

/** How zod 4's English default messages begin ("Too small: expected string to have >=1 characters"). */
const ZOD_WORDING = /^(Invalid|Too small|Too big|Unrecognized|Expected|Required)\b/;

function builtIn(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'too_small':
      if (issue.origin === 'string' && Number(issue.minimum) === 1) return text('config.not-empty', {});
      return issue.origin === 'string' || issue.origin === 'array' || issue.origin === 'set' ? text('config.too-short', { minimum: String(issue.minimum) }) : text('config.too-small', { minimum: String(issue.minimum) });
    case 'too_big':
      return issue.origin === 'string' || issue.origin === 'array' || issue.origin === 'set' ? text('config.too-long', { maximum: String(issue.maximum) }) : text('config.too-big', { maximum: String(issue.maximum) });
    case 'invalid_format':
      return text('config.bad-format', {});
    case 'not_multiple_of':
      return text('config.not-multiple', { divisor: String(issue.divisor) });
    default:
      return text('config.invalid', {});
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** Line number (1-based) of the YAML node at `path`, or of its nearest existing parent. */
export function lineOf(doc: Document | undefined, lc: LineCounter | undefined, path: Path): number | undefined {
  if (!doc || !lc) return undefined;
  let node: unknown = doc.contents;
  let best: number | undefined;
  const at = (n: unknown) => {
    const r = (n as { range?: [number, number, number] } | null)?.range;
    return r ? lc.linePos(r[0]).line : undefined;
  };
  best = at(node);
  for (const k of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => (p.key as { value?: unknown } | null)?.value === k);
      if (!pair) break;
      best = at(pair.key) ?? best;
      node = pair.value;
    } else if (isSeq(node) && typeof k === 'number') {
      node = node.items[k];
      best = at(node) ?? best;
    } else break;
  }
  return best;
}

export function formatIssues(error: z.ZodError, doc?: Document, lc?: LineCounter): string[] {
  return error.issues.flatMap((iss) => issueMessages(iss).map(({ path, message }) => formatProblem(path, message, doc, lc)));
}

export function formatProblem(path: Path, message: string, doc?: Document, lc?: LineCounter): string {
  const line = lineOf(doc, lc, path);
  return `${formatPath(path)}: ${message}${line ? ` (line ${line})` : ''}`;
}

/** yaml's own messages already carry "at line L, column C"; keep the first line only. */
export function yamlErrors(doc: Document): string[] {
  return doc.errors.map((e) => `YAML: ${e.message.split('\n')[0]!.replace(/:\s*$/, '')}`);
}
