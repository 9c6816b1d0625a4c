// MySQL character sets and their collations, first = the charset's default (after Trove's
// trove/common/db/mysql/data.py, plus utf8mb3/utf8mb4 which MySQL 8 and MariaDB 10.6+ use).

const unicodeSuffixes = [
  'general_ci', 'bin', 'unicode_ci', 'icelandic_ci', 'latvian_ci', 'romanian_ci', 'slovenian_ci',
  'polish_ci', 'estonian_ci', 'spanish_ci', 'swedish_ci', 'turkish_ci', 'czech_ci', 'danish_ci',
  'lithuanian_ci', 'slovak_ci', 'spanish2_ci', 'roman_ci', 'persian_ci', 'esperanto_ci', 'hungarian_ci',
];

const unicode = (charset: string, extra: string[] = []) => [
  ...unicodeSuffixes.map((s) => `${charset}_${s}`),
  ...extra.map((s) => `${charset}_${s}`),
];

const pair = (charset: string, ci: string) => [`${charset}_${ci}`, `${charset}_bin`];

export const mysqlCharsets: Readonly<Record<string, readonly string[]>> = Object.freeze({
  big5: pair('big5', 'chinese_ci'),
  dec8: pair('dec8', 'swedish_ci'),
  cp850: pair('cp850', 'general_ci'),
  hp8: pair('hp8', 'english_ci'),
  koi8r: pair('koi8r', 'general_ci'),
  latin1: [
    'latin1_swedish_ci', 'latin1_german1_ci', 'latin1_danish_ci', 'latin1_german2_ci', 'latin1_bin',
    'latin1_general_ci', 'latin1_general_cs', 'latin1_spanish_ci',
  ],
  latin2: ['latin2_general_ci', 'latin2_czech_cs', 'latin2_hungarian_ci', 'latin2_croatian_ci', 'latin2_bin'],
  swe7: pair('swe7', 'swedish_ci'),
  ascii: pair('ascii', 'general_ci'),
  ujis: pair('ujis', 'japanese_ci'),
  sjis: pair('sjis', 'japanese_ci'),
  hebrew: pair('hebrew', 'general_ci'),
  tis620: pair('tis620', 'thai_ci'),
  euckr: pair('euckr', 'korean_ci'),
  koi8u: pair('koi8u', 'general_ci'),
  gb2312: pair('gb2312', 'chinese_ci'),
  greek: pair('greek', 'general_ci'),
  cp1250: ['cp1250_general_ci', 'cp1250_czech_cs', 'cp1250_croatian_ci', 'cp1250_bin', 'cp1250_polish_ci'],
  gbk: pair('gbk', 'chinese_ci'),
  latin5: pair('latin5', 'turkish_ci'),
  armscii8: pair('armscii8', 'general_ci'),
  utf8: unicode('utf8'),
  utf8mb3: unicode('utf8mb3'),
  utf8mb4: unicode('utf8mb4', ['unicode_520_ci', '0900_ai_ci', '0900_as_ci', '0900_as_cs', '0900_bin']),
  ucs2: unicode('ucs2'),
  utf16: unicode('utf16'),
  utf32: unicode('utf32'),
  cp866: pair('cp866', 'general_ci'),
  keybcs2: pair('keybcs2', 'general_ci'),
  macce: pair('macce', 'general_ci'),
  macroman: pair('macroman', 'general_ci'),
  cp852: pair('cp852', 'general_ci'),
  latin7: ['latin7_general_ci', 'latin7_estonian_cs', 'latin7_general_cs', 'latin7_bin'],
  cp1251: ['cp1251_general_ci', 'cp1251_bulgarian_ci', 'cp1251_ukrainian_ci', 'cp1251_bin', 'cp1251_general_cs'],
  cp1256: pair('cp1256', 'general_ci'),
  cp1257: ['cp1257_general_ci', 'cp1257_lithuanian_ci', 'cp1257_bin'],
  binary: ['binary'],
  geostd8: pair('geostd8', 'general_ci'),
  cp932: pair('cp932', 'japanese_ci'),
  eucjpms: pair('eucjpms', 'japanese_ci'),
});

/** collation → its character set */
export const mysqlCollations: ReadonlyMap<string, string> = new Map(
  Object.entries(mysqlCharsets).flatMap(([charset, collations]) => collations.map((c) => [c, charset] as const)),
);
