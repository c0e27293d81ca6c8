// The 12-digit statistical division code (统计用区划代码) of a community: 6 digits of the
// county-level division (GB/T 2260: province, prefecture, county), 3 of the township (GB/T 10114,
// 县以下行政区划代码编制规则: 001-099 街道, 100-199 镇, 200-399 乡, 400-599 政企合一单位),
// 3 of the community or village committee (the National Bureau of Statistics' extension).
// What is checked is the structure, not that the code exists: the list changes every year.

/** GB/T 2260 province-level codes (34 divisions; 71 Taiwan, 81 Hong Kong, 82 Macao included). */
const PROVINCES = new Set(['11', '12', '13', '14', '15', '21', '22', '23', '31', '32', '33', '34', '35', '36', '37', '41', '42', '43', '44', '45', '46', '50', '51', '52', '53', '54', '61', '62', '63', '64', '65', '71', '81', '82']);

export type TownshipKind = '街道' | '镇' | '乡' | '政企合一单位';

export function townshipKind(code: string): TownshipKind | null {
  const t = Number(code.slice(6, 9));
  if (t >= 1 && t <= 99) return '街道';
  if (t >= 100 && t <= 199) return '镇';
  if (t >= 200 && t <= 399) return '乡';
  if (t >= 400 && t <= 599) return '政企合一单位';
  return null;
}

/** Why `code` is not a community's division code, naming the part that is wrong; null when it is one. */
export function divisionCodeProblem(code: string): string | null {
  if (!/^\d{12}$/.test(code)) return 'must be the 12-digit statistical division code of the community, e.g. "330106001001"';
  const province = code.slice(0, 2);
  if (!PROVINCES.has(province)) return `digits 1-2 ("${province}") are no province-level code (GB/T 2260; Zhejiang is 33)`;
  if (code.slice(2, 4) === '00') return 'digits 3-4 ("00") must name a prefecture (01-99): a province-level code is not a community';
  const township = code.slice(6, 9);
  if (townshipKind(code) === null) return `digits 7-9 ("${township}") must be a township: 001-099 街道, 100-199 镇, 200-399 乡, 400-599 政企合一单位`;
  if (code.slice(9) === '000') return 'digits 10-12 ("000") must name the community or village (001-999): a township code is not a community';
  return null;
}
