import vm from 'node:vm';
import { CofferError } from '../../common/index.js';

// Nova's `name` filter is a regular expression searched for in each server's name (the database's
// REGEXP, Python's re.search on SQLite). A tenant chooses the pattern, so a pattern that
// backtracks catastrophically (`(a+)+$`) must not hold the API's only thread: the matching runs
// in a separate V8 context whose execution is cut off after a time limit, and such a pattern is
// refused with 400 as a malformed one is.

const maxPatternLength = 255;
const timeLimitMs = 100;

/** The names among `names` that `pattern` matches somewhere (unanchored, case-sensitive, as Python's re.search). */
export function namesMatching(pattern: string, names: readonly string[]): Set<string> {
  if (pattern.length > maxPatternLength) {
    throw new CofferError('BadRequest', `Invalid input for query parameters name. Value should have at most ${maxPatternLength} characters.`);
  }
  try {
    new RegExp(pattern);
  } catch {
    throw new CofferError('BadRequest', 'Invalid input for query parameters name. Value is not a valid regular expression.');
  }
  const sandbox = vm.createContext({ pattern, names: [...names] });
  try {
    const matched = vm.runInContext(`(() => { const re = new RegExp(pattern); return names.filter((n) => re.test(n)); })()`, sandbox, {
      timeout: timeLimitMs,
    }) as string[];
    return new Set(matched);
  } catch {
    throw new CofferError('BadRequest', 'Invalid input for query parameters name. The expression takes too long to match.');
  }
}
