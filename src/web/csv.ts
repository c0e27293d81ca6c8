// A small RFC 4180 CSV reader for the device import (no CSV package is a dependency, and the
// import needs only this): fields separated by commas, records by CRLF (a bare LF or CR is
// taken too: files saved on Linux or old Macs), fields in double quotes may hold commas,
// line breaks and "" for a quote. A UTF-8 BOM (Excel's "CSV UTF-8") is dropped. Strict where
// a lenient reader would guess: a quote inside an unquoted field, text after a closing quote
// and an unclosed quote are errors naming the line.

export class CsvError extends Error {
  constructor(
    message: string,
    /** 1-based line of the file where the problem is. */
    readonly line: number,
    /** 1-based record number (the header is record 1). */
    readonly record: number,
  ) {
    super(message);
  }
}

export interface CsvRecord {
  fields: string[];
  /** 1-based record number, as a spreadsheet numbers its rows (the header is 1). */
  record: number;
  /** 1-based line of the file where the record starts (differs from `record` after a quoted
   * field that spans lines). */
  line: number;
}

/** Every record of `text`, blank lines included (as one empty field), so numbering stays as
 * in the file; a final line break does not make an extra record. */
export function parseCsv(text: string): CsvRecord[] {
  const s = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const out: CsvRecord[] = [];
  let fields: string[] = [];
  let field = '';
  let line = 1;
  let recordLine = 1;
  let i = 0;
  const n = s.length;
  const endRecord = () => {
    fields.push(field);
    out.push({ fields, record: out.length + 1, line: recordLine });
    fields = [];
    field = '';
  };
  /** After CR or LF at i: the index past the line break (CRLF is one). */
  const pastBreak = (j: number) => (s[j] === '\r' && s[j + 1] === '\n' ? j + 2 : j + 1);
  if (n === 0) return out;
  while (i < n) {
    const c = s[i]!;
    if (c === '"' && field === '') {
      // A quoted field: up to the closing quote, "" being one quote.
      const startLine = line;
      i++;
      for (;;) {
        if (i >= n) throw new CsvError(`a quoted field opened on line ${startLine} is never closed`, startLine, out.length + 1);
        const q = s[i]!;
        if (q === '"') {
          if (s[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        if (q === '\r' || q === '\n') {
          const j = pastBreak(i);
          field += s.slice(i, j);
          i = j;
          line++;
          continue;
        }
        field += q;
        i++;
      }
      const after = s[i];
      if (after !== undefined && after !== ',' && after !== '\r' && after !== '\n') {
        throw new CsvError(`text after the closing quote of a field on line ${line}: put the whole field in quotes, a quote inside written as ""`, line, out.length + 1);
      }
      if (after === undefined) break;
      continue;
    }
    if (c === ',') {
      fields.push(field);
      field = '';
      i++;
      continue;
    }
    if (c === '\r' || c === '\n') {
      endRecord();
      i = pastBreak(i);
      line++;
      recordLine = line;
      if (i >= n) return out;
      continue;
    }
    if (c === '"') throw new CsvError(`a quote inside an unquoted field on line ${line}: put the whole field in quotes, a quote inside written as ""`, line, out.length + 1);
    field += c;
    i++;
  }
  endRecord();
  return out;
}
