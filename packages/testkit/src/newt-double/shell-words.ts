/** A command line that cannot be split into words (unterminated quote, trailing backslash). */
export class ShellWordsError extends Error {
  override name = "ShellWordsError";
}

const BLANK = new Set([" ", "\t", "\n"]);
// Inside double quotes a backslash escapes only these (POSIX 2.2.3).
const DQ_ESCAPABLE = new Set(["$", "`", '"', "\\", "\n"]);

/**
 * Splits a command line into argv the way a POSIX shell forms words, without any
 * expansion (no `$VAR`, globs, `~`, operators): single quotes, double quotes and
 * backslashes are honoured, blanks separate words. This is what NEWT did with
 * `executable` when `loginenv` was false (Python's `shlex.split`).
 *
 * @throws ShellWordsError for an unterminated quote or a trailing backslash.
 */
export function splitShellWords(line: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let i = 0;
  while (i < line.length) {
    const c = line[i] as string;
    if (BLANK.has(c)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
      i++;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new ShellWordsError("unterminated single quote");
      word += line.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      i++;
      inWord = true;
      let closed = false;
      while (i < line.length) {
        const d = line[i] as string;
        if (d === '"') {
          closed = true;
          i++;
          break;
        }
        if (d === "\\" && i + 1 < line.length && DQ_ESCAPABLE.has(line[i + 1] as string)) {
          const next = line[i + 1] as string;
          if (next !== "\n") word += next;
          i += 2;
          continue;
        }
        word += d;
        i++;
      }
      if (!closed) throw new ShellWordsError("unterminated double quote");
    } else if (c === "\\") {
      if (i + 1 >= line.length) throw new ShellWordsError("trailing backslash");
      const next = line[i + 1] as string;
      if (next !== "\n") {
        word += next;
        inWord = true;
      }
      i += 2;
    } else {
      word += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(word);
  return words;
}
