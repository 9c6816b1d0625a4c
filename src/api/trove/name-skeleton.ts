// What a user name looks like, for comparing it with the engines' reserved names: `ｒｏｏｔ`
// (fullwidth), `rооt` (Cyrillic o's), `ro\u200bot` (a zero-width space) or `ROOT` must not pass
// for a name other than `root` in a client's listing, a log or a grant. After UTS #39's skeleton,
// cut down to what the reserved names need: NFKC (fullwidth forms, ligatures, the Kelvin sign),
// default-ignorable characters removed, lower case, and the letters of other scripts that are
// drawn like the Latin ones in the reserved names mapped to them (from Unicode's
// confusables.txt; multi-letter look-alikes such as `rn` for `m` are left out).

const confusables: Readonly<Record<string, string>> = {
  // Cyrillic
  '\u0430': 'a', '\u0441': 'c', '\u0501': 'd', '\u0435': 'e', '\u04bd': 'e', '\u0261': 'g', '\u04bb': 'h',
  '\u0456': 'i', '\u04cf': 'l', '\u0458': 'j', '\u043e': 'o', '\u0440': 'p', '\u051b': 'q', '\u0433': 'r',
  '\u0455': 's', '\u0445': 'x', '\u0443': 'y', '\u04af': 'y', '\u051d': 'w', '\u0475': 'v',
  // Greek
  '\u03b1': 'a', '\u03f2': 'c', '\u03b9': 'i', '\u03f3': 'j', '\u03bf': 'o', '\u03c1': 'p', '\u03c5': 'u',
  '\u03bd': 'v', '\u03b3': 'y',
  // Armenian
  '\u0581': 'g', '\u0570': 'h', '\u0578': 'n', '\u057c': 'n', '\u0585': 'o', '\u0566': 'q', '\u057d': 'u',
  // Latin look-alikes and small capitals
  '\u0251': 'a', '\u0131': 'i', '\u0269': 'i', '\u1d04': 'c', '\u1d0f': 'o', '\u1d1c': 'u', '\ua731': 's',
  // digits and signs drawn like letters
  '1': 'l', '|': 'l', '\u01c0': 'l', '\u00d7': 'x',
};

const ignorable = /\p{Default_Ignorable_Code_Point}/gu;

export function nameSkeleton(name: string): string {
  const folded = name.normalize('NFKC').replace(ignorable, '').toLowerCase().normalize('NFKC');
  return Array.from(folded, (ch) => confusables[ch] ?? ch).join('');
}
