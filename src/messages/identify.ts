// Names a server message by its catalogue code. The server writes English (logs, CLI, the API's
// `error`); at the page's edge each text is matched back against the catalogue's English
// templates, so the page can show it in Chinese with its code. The text itself comes from the
// same templates, so a message that changes changes in one place. A text no template matches
// is kept as it came under `untranslated` (an OS or library message): never lost.
import { MESSAGES, type MessageCode } from './catalog.js';

export type ParamValue = string | Coded | Coded[];
export interface Coded {
  code: MessageCode;
  params: Record<string, ParamValue>;
  /** The config or body path the message is about ("devices[2].unitId"), when it has one. */
  path?: string;
}

export type Lang = 'en' | 'zh';

/** Parameters that hold another message ("connect to X failed: <detail>"), matched in turn. */
const NESTED = new Set(['detail', 'reason', 'value']);
/** Parameters that hold one word of a known set, shown in the page's language: the word's code
 * is the prefix and the word ("privacy.personal"). */
const WORDS: Record<string, string> = { privacy: 'privacy.', expected: 'type.', state: 'state.', name: 'exception.' };
const wordCode = (prefix: string, v: string) => `${prefix}${v.toLowerCase().replace(/ /g, '-')}`;
/** Parameters that hold a "; "-joined list of messages (the password policy's problems). */
const LISTS = new Set(['problems']);

interface Matcher {
  code: MessageCode;
  re: RegExp;
  names: string[];
  /** Literal characters in the template: a longer one is more specific and is tried first. */
  literal: number;
}

const PLACEHOLDER = /\{(\w+)\}/g;

function compile(code: MessageCode, template: string): Matcher {
  const names: string[] = [];
  let re = '';
  let last = 0;
  let literal = 0;
  for (const m of template.matchAll(PLACEHOLDER)) {
    const lit = template.slice(last, m.index);
    re += lit.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    literal += lit.length;
    names.push(m[1]!);
    last = m.index + m[0].length;
    re += last === template.length ? '([\\s\\S]+)' : '([\\s\\S]+?)';
  }
  const tail = template.slice(last);
  re += tail.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  literal += tail.length;
  return { code, re: new RegExp(`^${re}$`), names, literal };
}

const MATCHERS: Matcher[] = (Object.keys(MESSAGES) as MessageCode[])
  .filter((c) => c !== 'untranslated')
  .map((c) => compile(c, MESSAGES[c].en))
  .sort((a, b) => b.literal - a.literal);

/** The template's parameter names, in order (for the catalogue's own test). */
export function placeholders(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => m[1]!);
}

/** A config path ("devices[2].unitId"), "(top level)", or a file ("/etc/.../drivers/x.yaml"). */
const PATH_PREFIX = /^((?:[A-Za-z_$][\w$-]*|\[\d+\]|\["[^"]*"\])(?:\.[A-Za-z_$][\w$-]*|\[\d+\]|\["[^"]*"\])*|\(top level\)|\/[^\s:]+): ([\s\S]+)$/;

export function identify(text: string): Coded {
  const whole = match(text);
  if (whole) return whole;
  // "devices[2].unitId: must be 1..247": the path, then a message of its own.
  const p = PATH_PREFIX.exec(text);
  if (p) {
    const rest = identify(p[2]!);
    const inner = rest.code === 'untranslated' ? null : rest;
    if (inner) return { ...inner, path: inner.path ? `${p[1]!}: ${inner.path}` : p[1]! };
  }
  return { code: 'untranslated', params: { text } };
}

function match(text: string): Coded | null {
  for (const m of MATCHERS) {
    const r = m.re.exec(text);
    if (!r) continue;
    const params: Record<string, ParamValue> = {};
    let weakOk = true;
    m.names.forEach((n, i) => {
      const v = r[i + 1]!;
      if (NESTED.has(n)) {
        const inner = identify(v);
        if (inner.code === 'untranslated') weakOk = false;
        params[n] = inner.code === 'untranslated' ? v : inner;
      } else if (WORDS[n] && wordCode(WORDS[n], v) in MESSAGES) {
        params[n] = { code: wordCode(WORDS[n], v) as MessageCode, params: {} };
      } else if (LISTS.has(n)) {
        params[n] = v.split('; ').map(identify);
      } else params[n] = v;
    });
    // A template that is almost all parameters ("{reason} ({endpoint})") only counts when
    // what it holds is itself a known message.
    if (m.literal < 4 && !weakOk) continue;
    return { code: m.code, params };
  }
  return null;
}

/** The message in `lang`, its parameters filled (nested messages rendered in the same language). */
export function render(c: Coded, lang: Lang = 'en'): string {
  const entry = MESSAGES[c.code] ?? MESSAGES.untranslated;
  const body = entry[lang].replace(PLACEHOLDER, (all, name: string) => {
    const v = c.params[name];
    if (v === undefined) return all;
    if (typeof v === 'string') return v;
    if (Array.isArray(v)) return v.map((x) => render(x, lang)).join(lang === 'zh' ? '；' : '; ');
    return render(v, lang);
  });
  return c.path ? `${c.path}${lang === 'zh' ? '：' : ': '}${body}` : body;
}

/** The English text of `code` with `params`: how a producer writes a catalogued message. */
export function text(code: MessageCode, params: Record<string, string>): string {
  return render({ code, params });
}
