// What made an engine fail to start, in one line a tenant may read: its fault message. The log
// itself (timestamps, pids, host paths) goes only into the fault's details, which Trove shows to
// admins alone.

/** The system errors an engine reports when it cannot start, as their strerror text. */
const knownCauses = [
  'Address already in use',
  'Cannot assign requested address',
  'No space left on device',
  'Disk quota exceeded',
  'Permission denied',
  'Read-only file system',
  'Cannot allocate memory',
  'Out of memory',
  'Too many open files',
  'could not create shared memory segment',
  'database files are incompatible with server',
];

/** A log line that reports an error, in PostgreSQL's, MariaDB/MySQL's and Redis's formats. */
const errorLine = /\b(?:FATAL|PANIC|ERROR):\s+|\[(?:ERROR|FATAL)\]\s+|^\d+:[A-Z] .*? # /;

const maxCause = 200;

/** Host paths become their last component: enough to say which file, nothing of the layout. */
export function withoutPaths(text: string): string {
  // Only what starts a word is a path: "TCP/IP" is not one.
  return text.replace(/(?<![\w.-])(?:\/[^\s/"'`:;,()]+)+\/?/g, (path) => {
    const parts = path.split('/').filter((p) => p !== '');
    return parts.length === 0 ? path : parts[parts.length - 1]!;
  });
}

/** The cause in a start-up log's tail, or undefined when the log names none. */
export function startFailureCause(logTail: string): string | undefined {
  const lines = logTail.split('\n').map((line) => line.trim()).filter((line) => line !== '');
  for (const cause of knownCauses) {
    const lower = cause.toLowerCase();
    if (lines.some((line) => line.toLowerCase().includes(lower))) return cause;
  }
  for (let i = lines.length - 1; i >= 0; i -= 1) {
    const line = lines[i]!;
    const match = errorLine.exec(line);
    if (match === null) continue;
    const cause = withoutPaths(line.slice(match.index + match[0].length)).trim();
    if (cause === '') continue;
    return cause.length > maxCause ? `${cause.slice(0, maxCause - 1)}…` : cause;
  }
  return undefined;
}
