/**
 * Words that break naive command lines: every shell metacharacter, quotes, whitespace
 * (newlines included), option look-alikes, empty strings and non-ASCII text. None contains
 * a NUL byte, which no argv can carry. A connector must deliver each one verbatim as one
 * argv element. Injected into a shell by a broken connector, they stay harmless: commands
 * are `echo`, redirections go to `/dev/null`.
 */
export const HOSTILE_WORDS: readonly string[] = Object.freeze([
  "",
  " ",
  "  two  spaces  ",
  "a b",
  "'",
  '"',
  "''",
  '""',
  "it's",
  'say "hi"',
  "\\",
  "\\\\",
  "back\\slash",
  "a\nb",
  "\n",
  "trailing newline\n",
  "\r\n",
  "tab\there",
  "$(echo injected)",
  "`id`",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell syntax that must arrive unexpanded
  "${HOME}",
  "$HOME",
  "$",
  "$1",
  "; echo injected",
  "a;b",
  "&& echo no",
  "|",
  "a|b",
  "&",
  ">/dev/null",
  "<in",
  "2>&1",
  "*",
  "?",
  "[a-z]",
  "{a,b}",
  "~",
  "~root",
  "#comment",
  "!",
  "!!",
  "-",
  "--",
  "-n",
  "-e",
  "--help",
  "-rf",
  "%s",
  "%%",
  "%n%n",
  "=",
  "A=B",
  "é",
  "naïve café",
  "中文字符",
  "🎉",
  "Ünïcødé 'mixed' \"quotes\" $(and) `more`",
  "\u00a0non-breaking\u00a0space",
  "\u200bzero-width",
  "\x01\x02\x1f\x7f",
  "\x1b[31mred\x1b[0m",
]);

/**
 * Names for files that test path handling: spaces, quotes, shell characters and non-ASCII
 * text. No `/`, no NUL, no newline, none starts with `-`.
 */
export const HOSTILE_FILE_NAMES: readonly string[] = Object.freeze([
  "with space.bin",
  "it's quoted.bin",
  'double "quoted".bin',
  "dollar $(x) `y` ;&|.bin",
  "glob *?[a].bin",
  "ünïcødé 中文 🎉.bin",
  "back\\slash.bin",
]);

/**
 * A small fast deterministic generator (mulberry32): the same seed gives the same numbers
 * on every machine, so a failure found with a seed can be reproduced.
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Characters weighted towards trouble: shell syntax, quotes, whitespace, controls. No `>`:
// a broken connector would let a random word create files wherever its shell runs.
const NASTY = [..." \t\n\r'\"\\$`;&|<()[]{}*?!#~=%^,-"];
const CONTROL = Array.from({ length: 31 }, (_, i) => String.fromCharCode(i + 1)).concat("\x7f");
const NON_ASCII = [..."éüßçñ€£¥©µ中文字日本語한국어Ωπ∑√∞"].concat(["🎉", "😀", "𝄞", "\u00a0", "\u200b", "\u2028"]);

/**
 * `count` random strings built to break argument passing: shell metacharacters, quotes,
 * whitespace and newlines, control characters, leading dashes, empty strings and non-ASCII
 * text (astral characters included), lengths 0–40. Deterministic for a given `seed`.
 * Never contains NUL or a lone surrogate, so each is valid UTF-8 and a valid argv element.
 */
export function randomHostileStrings(count: number, seed = 1): string[] {
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer, got ${count}`);
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const roll = random();
    if (roll < 0.03) {
      out.push("");
      continue;
    }
    const length = 1 + Math.floor(random() * 40);
    let word = roll < 0.15 ? "-" : "";
    while ([...word].length < length) {
      const kind = random();
      if (kind < 0.4) word += pick(NASTY);
      else if (kind < 0.55) word += pick(CONTROL);
      else if (kind < 0.75) word += pick(NON_ASCII);
      else word += String.fromCharCode(33 + Math.floor(random() * 94));
    }
    out.push(word);
  }
  return out;
}
