import { pipeline, Transform } from 'node:stream';
import { CofferError } from '../../common/index.js';
import type { StreamingProcess } from '../process-runner.js';
import type { BackupFacts, BackupRun } from './engine.js';

// A backup as an engine's tool writes it to its standard output, watched as it passes. The
// stream a caller reads ends cleanly only once the tool has exited successfully and the output
// held everything a complete backup holds; otherwise it fails, so a storage upload reading it
// fails too instead of storing a truncated backup as if it were whole (`finished` rejects as well).

/** Sees a tool's output as it passes, unchanged, and tells what it learnt once all of it passed. */
export interface BackupInspector {
  /** each chunk of the output, in order; throws (a CofferError) at output that is not what the tool writes */
  see(chunk: Buffer): void;
  /** once the whole output was seen: the facts to record; throws (a CofferError) when it lacks what a complete backup holds */
  facts(): BackupFacts;
}

/**
 * Makes the run of `tool`, a started backup program whose stdout is the backup, started with
 * `signal`. Destroying the run's stream kills the tool; a tool that fails, is aborted or times
 * out fails the stream and rejects `finished` with its EngineError.
 */
export function toolBackupRun(tool: StreamingProcess, inspector: BackupInspector, signal: AbortSignal): BackupRun {
  tool.stdin.end();
  let settle!: { resolve: (facts: BackupFacts) => void; reject: (err: unknown) => void };
  const finished = new Promise<BackupFacts>((resolve, reject) => {
    settle = { resolve, reject };
  });
  // whoever only reads the stream must not meet an unhandled rejection
  finished.catch(() => undefined);

  const stream = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      try {
        inspector.see(chunk);
        done(null, chunk);
      } catch (err) {
        done(err as Error);
      }
    },
    // the output ended: the end is passed on only once the tool's exit and the output's facts are known
    flush(done) {
      tool.exited.then(() => inspector.facts()).then(
        (facts) => {
          settle.resolve(facts);
          done();
        },
        (err: unknown) => {
          settle.reject(err);
          done(err as Error);
        },
      );
    },
  });

  // a tool that fails, is aborted or times out fails the run at once, read or not
  tool.exited.catch((err: unknown) => {
    settle.reject(err);
    stream.destroy(err as Error);
  });
  // the runner kills the tool, but its exit settles only once its stdout is closed: a reader
  // that stopped reading would leave it open, so the stream (and with it stdout) goes now
  const onAbort = () => stream.destroy(new CofferError('EngineError', 'The backup was aborted.'));
  signal.addEventListener('abort', onAbort, { once: true });
  if (signal.aborted) onAbort();
  stream.once('close', () => signal.removeEventListener('abort', onAbort));
  pipeline(tool.stdout, stream, (err) => {
    if (err === undefined || err === null) return;
    // the reader gave up (destroyed the stream) or the output was malformed: the tool goes
    tool.kill();
    tool.exited.then(
      () => settle.reject(err instanceof CofferError ? err : new CofferError('EngineError', `The backup stopped: ${err.message}`, { cause: err })),
      (exitErr: unknown) => settle.reject(err instanceof CofferError ? err : exitErr),
    );
  });
  return { stream, finished };
}
