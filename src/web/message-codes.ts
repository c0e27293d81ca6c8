// The page's edge for messages: every error text in an answer gets its catalogue code beside
// it (src/messages/), so the page shows it in its language with the code. Applied to every
// refusal (4xx/5xx) and to the answers that carry per-item errors (read-now, scans).
import { identify } from '../messages/identify.js';

/** A copy of `body` where each object with a string `error` or `message` gains `msg`, a
 * sentence under `reason` gains `reasonMsg`, and a list of strings under `errors` gains
 * `errorMsgs`. Objects that already carry `msg` are left as they are. */
export function withCodes<T>(body: T): T {
  return walk(body, 0) as T;
}

function walk(v: unknown, depth: number): unknown {
  if (depth > 8 || v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map((x) => walk(x, depth + 1));
  const o = v as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(o)) out[k] = walk(x, depth + 1);
  const text = typeof o.error === 'string' ? o.error : typeof o.message === 'string' ? o.message : null;
  if (text && !('msg' in o)) out.msg = identify(text);
  // A reason with a space is a sentence for the technician; one word is a keyword for the page.
  if (typeof o.reason === 'string' && o.reason.includes(' ') && !('reasonMsg' in o)) out.reasonMsg = identify(o.reason);
  if (Array.isArray(o.errors) && o.errors.every((e) => typeof e === 'string') && o.errors.length) out.errorMsgs = (o.errors as string[]).map(identify);
  return out;
}
