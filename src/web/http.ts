// Small HTTP helpers for the web server: bounded JSON bodies validated with zod at the edge,
// JSON answers with safe headers. No framework: the API is a dozen routes.
import type http from 'node:http';
import type { z } from 'zod';
import { withCodes } from './message-codes.js';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const BASE_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  // A refusal's texts get their message codes here, once for every route (src/web/message-codes.ts).
  res.writeHead(status, { ...BASE_HEADERS, 'content-type': 'application/json; charset=utf-8', ...headers }).end(JSON.stringify(status >= 400 ? withCodes(body) : body));
}

/** Reads and validates a JSON body of at most `limit` bytes; errors name the field. */
export async function readBody<T extends z.ZodType>(req: http.IncomingMessage, schema: T, limit = 64 * 1024): Promise<z.infer<T>> {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) throw new HttpError(415, 'body must be application/json');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new HttpError(413, `body larger than ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new HttpError(400, `body is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new HttpError(400, `${i.path.length ? i.path.join('.') : 'body'}: ${i.message}`);
  }
  return parsed.data;
}

/** The client's address without the IPv4-mapped prefix. */
export function clientIp(req: http.IncomingMessage): string {
  const a = req.socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}
