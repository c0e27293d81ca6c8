// Devices added from the page in bulk (a CSV file) or one at a time (a unit found by a bus
// scan): the rows become devices appended to the running config's YAML (comments kept), and
// that whole config goes through the start-up checks (App.validate). Nothing is applied unless
// every row passes; every error is given back at its row (numbered as in the file, the
// header being row 1) and column (by header name), so the page can show a table of them.
import { isMap, isSeq, parseDocument } from 'yaml';
import type { FieldError } from './config-edit.js';
import { CsvError, parseCsv } from './csv.js';

/** The columns of an import file, in the order the page's template has them. */
export const IMPORT_COLUMNS = ['id', 'name', 'facility', 'profile', 'bus', 'unitId', 'pollMs'] as const;
export type ImportColumn = (typeof IMPORT_COLUMNS)[number];
/** Columns a header must have; name and pollMs may be left out (no name, the default poll). */
const REQUIRED: readonly ImportColumn[] = ['id', 'facility', 'profile', 'bus', 'unitId'];
const NUMERIC = new Set<ImportColumn>(['unitId', 'pollMs']);

/** A CSV larger than this is refused before it is parsed (a site has tens of devices). */
export const IMPORT_LIMITS = { bytes: 256 * 1024, rows: 1000 } as const;

export interface ImportError {
  /** Row of the file (header = 1), or of the list given (first = 1); null: the file as a whole. */
  row: number | null;
  /** Header name of the column, or null when the error is about the row or file. */
  column: string | null;
  message: string;
}

export interface ImportRow {
  row: number;
  cells: Partial<Record<ImportColumn, string>>;
}

export type ImportPlan = { ok: true; text: string; ids: string[] } | { ok: false; errors: ImportError[] };

type Validate = (text: string) => { ok: true } | { ok: false; errors: FieldError[] };

/** The data rows of a CSV file, or the errors of its shape (header, field counts, size). */
export function csvRows(csv: string): { ok: true; rows: ImportRow[] } | { ok: false; errors: ImportError[] } {
  if (Buffer.byteLength(csv, 'utf8') > IMPORT_LIMITS.bytes) {
    return { ok: false, errors: [{ row: null, column: null, message: `the file is larger than ${IMPORT_LIMITS.bytes / 1024} KiB: split it` }] };
  }
  // A file that is not UTF-8 (Excel's plain "CSV" is GBK on a Chinese Windows) reaches here
  // with U+FFFD where its Chinese was: say so rather than import mangled names.
  if (csv.includes('\uFFFD')) {
    return { ok: false, errors: [{ row: null, column: null, message: 'the file is not UTF-8 (GBK?): save it as "CSV UTF-8" and import again' }] };
  }
  let records;
  try {
    records = parseCsv(csv);
  } catch (err) {
    if (!(err instanceof CsvError)) throw err;
    return { ok: false, errors: [{ row: err.record, column: null, message: err.message }] };
  }
  const header = records[0];
  if (!header || (header.fields.length === 1 && header.fields[0]!.trim() === '')) {
    return { ok: false, errors: [{ row: 1, column: null, message: `the first row must be the header: ${IMPORT_COLUMNS.join(',')}` }] };
  }
  const errors: ImportError[] = [];
  const names = header.fields.map((f) => f.trim());
  // No known column at all: a file without its header row, one error rather than one a column.
  if (!names.some((n) => (IMPORT_COLUMNS as readonly string[]).includes(n))) {
    return { ok: false, errors: [{ row: 1, column: null, message: `the first row must be the header: ${IMPORT_COLUMNS.join(',')}` }] };
  }
  const seen = new Set<string>();
  for (const name of names) {
    if (!(IMPORT_COLUMNS as readonly string[]).includes(name)) errors.push({ row: 1, column: name, message: `unknown column "${name}": the columns are ${IMPORT_COLUMNS.join(', ')}` });
    else if (seen.has(name)) errors.push({ row: 1, column: name, message: `column "${name}" is given twice` });
    seen.add(name);
  }
  for (const c of REQUIRED) if (!seen.has(c)) errors.push({ row: 1, column: c, message: `the header lacks the column "${c}"` });
  if (errors.length) return { ok: false, errors };
  // Blank lines (an empty record) are skipped, keeping the numbering of the others.
  const data = records.slice(1).filter((r) => !(r.fields.length === 1 && r.fields[0]!.trim() === ''));
  if (!data.length) return { ok: false, errors: [{ row: null, column: null, message: 'the file has a header but no device rows' }] };
  if (data.length > IMPORT_LIMITS.rows) return { ok: false, errors: [{ row: null, column: null, message: `${data.length} device rows: at most ${IMPORT_LIMITS.rows} in one file` }] };
  const rows: ImportRow[] = [];
  for (const r of data) {
    if (r.fields.length !== names.length) {
      errors.push({ row: r.record, column: null, message: `${r.fields.length} fields, the header has ${names.length}` });
      continue;
    }
    const cells: ImportRow['cells'] = {};
    names.forEach((name, k) => {
      cells[name as ImportColumn] = r.fields[k]!.trim();
    });
    rows.push({ row: r.record, cells });
  }
  return errors.length ? { ok: false, errors } : { ok: true, rows };
}

/** The config `configText` with `rows` appended as devices, checked whole by `validate`. */
export function planImport(rows: ImportRow[], configText: string, validate: Validate): ImportPlan {
  const errors: ImportError[] = [];
  const doc = parseDocument(configText);
  if (!isMap(doc.contents)) return { ok: false, errors: [{ row: null, column: null, message: 'the running configuration is not a YAML mapping' }] };
  const existing = doc.get('devices');
  if (existing !== undefined && existing !== null && !isSeq(existing)) return { ok: false, errors: [{ row: null, column: null, message: 'devices: in the running configuration is not a list' }] };
  const before = isSeq(existing) ? existing.items.length : 0;
  // `devices: []` is a flow list: the added devices go in block style, one key a line.
  if (isSeq(existing)) existing.flow = false;
  for (const r of rows) {
    const dev: Record<string, string | number> = {};
    for (const c of IMPORT_COLUMNS) {
      const v = r.cells[c];
      if (v === undefined || v === '') continue; // absent: the schema says whether that is allowed
      if (NUMERIC.has(c)) {
        // A number here, not in the schema: the schema would only say "expected number".
        if (!/^\d+$/.test(v)) {
          errors.push({ row: r.row, column: c, message: `"${v}" is not a whole number` });
          continue;
        }
        dev[c] = Number(v);
      } else dev[c] = v;
    }
    if (isSeq(doc.get('devices'))) doc.addIn(['devices'], doc.createNode(dev));
    else doc.set('devices', doc.createNode([dev]));
  }
  const text = doc.toString();
  const v = validate(text);
  if (!v.ok) {
    for (const e of v.errors) {
      const m = /^devices\[(\d+)\](?:\.(\w+))?/.exec(e.path);
      const k = m ? Number(m[1]) - before : -1;
      const row = k >= 0 && k < rows.length ? rows[k]! : null;
      // A number already refused above is not reported twice (as "required").
      if (row && m?.[2] && errors.some((x) => x.row === row.row && x.column === m[2])) continue;
      errors.push({
        row: row ? row.row : null,
        column: row ? (m?.[2] ?? null) : null,
        message: (row ? '' : e.path ? `${e.path}: ` : '') + rowNames(e.message, before, rows),
      });
    }
  }
  if (errors.length) return { ok: false, errors: errors.sort((a, b) => (a.row ?? 0) - (b.row ?? 0)) };
  return { ok: true, text, ids: rows.map((r) => r.cells.id!) };
}

/** "already used by devices[7]": the imported device named by its row, as the file shows it. */
function rowNames(message: string, before: number, rows: ImportRow[]): string {
  return message.replace(/devices\[(\d+)\]/g, (all, n: string) => {
    const k = Number(n) - before;
    return k >= 0 && k < rows.length ? `row ${rows[k]!.row}` : all;
  });
}
