// The device import's CSV reader (src/web/csv.ts): RFC 4180 quoting, CRLF, BOM, and the
// record/line numbers the import's errors are given in.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CsvError, parseCsv } from '../../src/web/csv.js';

const fields = (text: string) => parseCsv(text).map((r) => r.fields);

describe('parseCsv', () => {
  it('splits fields and records on CRLF, LF or CR; a final line break adds no record', () => {
    expect(fields('a,b,c\r\n1,2,3\r\n')).toEqual([['a', 'b', 'c'], ['1', '2', '3']]);
    expect(fields('a,b\n1,2')).toEqual([['a', 'b'], ['1', '2']]);
    expect(fields('a,b\r1,2\r')).toEqual([['a', 'b'], ['1', '2']]);
    expect(fields('a,,\r\n,,')).toEqual([['a', '', ''], ['', '', '']]);
    expect(fields('')).toEqual([]);
  });

  it('drops a UTF-8 BOM and keeps Chinese text as it is', () => {
    expect(fields('\ufeffid,name\r\nfridge-1,冷藏柜 1 号\r\n')).toEqual([['id', 'name'], ['fridge-1', '冷藏柜 1 号']]);
  });

  it('quoted fields hold commas, "" quotes and line breaks; record and line numbers follow the file', () => {
    const r = parseCsv('id,name\r\na,"厨房, 北"\r\nb,"说 ""冷"""\r\nc,"two\r\nlines"\r\nd,""\r\n');
    expect(r.map((x) => x.fields)).toEqual([['id', 'name'], ['a', '厨房, 北'], ['b', '说 "冷"'], ['c', 'two\r\nlines'], ['d', '']]);
    expect(r.map((x) => [x.record, x.line])).toEqual([[1, 1], [2, 2], [3, 3], [4, 4], [5, 6]]);
  });

  it('refuses a quote inside an unquoted field, text after a closing quote and an unclosed quote, naming the line', () => {
    const err = (text: string) => {
      try {
        parseCsv(text);
      } catch (e) {
        expect(e).toBeInstanceOf(CsvError);
        return [(e as CsvError).message, (e as CsvError).line, (e as CsvError).record];
      }
      throw new Error('no error');
    };
    expect(err('id,name\nab"c,d')).toEqual([expect.stringMatching(/^a quote inside an unquoted field on line 2/), 2, 2]);
    expect(err('id,name\n"ab"c,d')).toEqual([expect.stringMatching(/^text after the closing quote of a field on line 2/), 2, 2]);
    expect(err('id,name\nx,y\n"open,\nstill')).toEqual(['a quoted field opened on line 3 is never closed', 3, 3]);
  });

  it('reads back what an RFC 4180 writer wrote, any text in the fields', () => {
    const quote = (f: string) => (/[",\r\n]/.test(f) || f === '' ? `"${f.replace(/"/g, '""')}"` : f);
    fc.assert(
      fc.property(fc.array(fc.array(fc.string({ unit: fc.constantFrom('a', '冷', ',', '"', '\r', '\n', ' ', 'x') }), { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 5 }), (rows) => {
        const text = rows.map((r) => r.map(quote).join(',')).join('\r\n') + '\r\n';
        expect(fields(text)).toEqual(rows);
      }),
    );
  });
});
