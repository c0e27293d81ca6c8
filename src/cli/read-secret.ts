// Reads a password for the CLI: without echo from a terminal (raw mode, asked twice when
// `confirm`), or the whole of stdin when piped (`echo -n pw | community-gateway hash-password`).
export class SecretInputError extends Error {}

/** One line typed without echo. Ctrl-C or Ctrl-D on an empty line aborts. */
function readHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  return new Promise((resolve, reject) => {
    let buf = '';
    // Raw (no echo) before the prompt: whatever is typed after seeing it is never shown.
    stdin.setRawMode(true);
    process.stderr.write(prompt);
    stdin.setEncoding('utf8');
    stdin.resume();
    const done = (err: Error | null) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(buf);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return done(null);
        if (ch === '\u0003') return done(new SecretInputError('interrupted'));
        if (ch === '\u0004' && buf === '') return done(new SecretInputError('no password given'));
        if (ch === '\u007f' || ch === '\b') buf = [...buf].slice(0, -1).join('');
        else if (ch >= ' ') buf += ch;
      }
    };
    stdin.on('data', onData);
  });
}

export async function readSecret(what: string, confirm: boolean): Promise<string> {
  if (process.stdin.isTTY) {
    const first = await readHidden(`${what}: `);
    if (confirm) {
      const second = await readHidden(`${what} again: `);
      if (first !== second) throw new SecretInputError('the two entries differ');
    }
    return first;
  }
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}
