import { type ChildProcess, spawn } from 'node:child_process';
import { Duplex, type Writable } from 'node:stream';
import { CofferError } from '../common/index.js';

// Debian's zstd program as a stream stage: bytes written go to its stdin, its stdout is what
// this stream reads. zstd, not a compression library in this process: it compresses on its own
// threads (-T2) beside Node's, at the speed FIELD-NOTES measured, and needs no native module.
//
// The child runs as Coffer's own user (the host user), not as the engine's OS user. Its input
// is either the engine tool's output (to compress) or frames whose tags verified under the
// project's key, i.e. what Coffer's own zstd wrote (to decompress): no tenant-crafted zstd data
// ever reaches a decompressor. As the engine's user instead, a tenant's programs could trace or
// kill it. It gets no key (sealing happens in this process), no environment of ours (which may
// hold secrets, and ZSTD_CLEVEL / ZSTD_NBTHREADS would change what it does) and no descriptors
// but its three pipes.
//
// With an `output` (a child process's stdin, see decodeBackupInto), zstd writes into that
// process's pipe itself: what it decompresses never passes through this process, which then
// only reads and checks the third of the bytes that is compressed. The stream's readable side
// carries nothing then but its end, once zstd exited successfully.
//
// Its input may come the same way: a process started with zstd's stdin (`stdin`) as its stdout
// writes into zstd itself (the backup tool of an engine whose output needs no watching), and
// then the uncompressed bytes, three times the compressed ones, never pass through this process
// either. The stream's writable side then takes no bytes, only its end.
//
// Its life is the stream's: it ends when its input ends (and it exited 0), and destroying the
// stream kills it (SIGKILL) and waits until it is reaped before the stream closes. There is no
// timeout of its own: a backup takes as long as the engine's output does, so the caller's
// abort signal (its task's deadline) bounds it.

export const zstdProgram = '/usr/bin/zstd';
export const zstdCompressArgs: readonly string[] = ['-1', '-T2', '-q', '-c'];
export const zstdDecompressArgs: readonly string[] = ['-d', '-q', '-c'];

/** only the tail of stderr is kept: it explains a failure, and a chatty child must not grow us */
const stderrLimit = 4096;
const childEnv = { PATH: '/usr/bin:/bin', LANG: 'C' };

export class ZstdStream extends Duplex {
  readonly #program: string;
  readonly #output: Writable | undefined;
  #child: ChildProcess | undefined;
  #passThrough = false;
  #inputEnded = false;
  #inputHandedOver = false;
  #stderr = '';
  /** a write held until the reader wants more (pass-through mode) */
  #heldWrite: (() => void) | undefined;

  /**
   * With `args`, zstd starts now; without, the stream waits for {@link start} or
   * {@link passThrough}, which must come before the first byte is written (a decoder learns from
   * the object's header whether its content is compressed at all). With `output`, a stream
   * backed by a descriptor (a child's stdin), zstd writes there instead (pass-through bytes
   * still come out of this stream's readable side).
   */
  constructor(program: string, args?: readonly string[], output?: Writable) {
    super({ readableHighWaterMark: 1024 * 1024, writableHighWaterMark: 1024 * 1024 });
    this.#program = program;
    this.#output = output;
    if (args !== undefined) this.start(args);
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  start(args: readonly string[]): void {
    if (this.#child !== undefined || this.#passThrough || this.destroyed) return;
    const child = spawn(this.#program, args, { stdio: ['pipe', this.#output ?? 'pipe', 'pipe'], env: childEnv });
    this.#child = child;
    // stdout is null when zstd writes into `output` itself
    const { stdout } = child;
    const stdin = child.stdin!;
    const stderr = child.stderr!;
    child.on('error', (err: NodeJS.ErrnoException) => {
      this.destroy(
        new CofferError(
          'Internal',
          `Backups need the zstd program at ${this.#program}, which could not be run (${err.code ?? err.message}): install Debian's zstd package (apt-get install zstd).`,
          { cause: err },
        ),
      );
    });
    // zstd may die before reading all it was given: its exit status tells why, not EPIPE
    stdin.on('error', () => undefined);
    stderr.setEncoding('utf8').on('data', (text: string) => {
      this.#stderr = (this.#stderr + text).slice(-stderrLimit);
    });
    stdout?.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) stdout.pause();
    });
    // after its pipes closed: everything it wrote has been pushed
    child.on('close', (code, signal) => {
      if (this.destroyed) return;
      if (code === 0 && this.#inputEnded) {
        this.push(null);
        return;
      }
      if (this.#output !== undefined && (signal === 'SIGPIPE' || /Broken pipe/i.test(this.#stderr))) {
        // the process zstd writes into stopped reading: not zstd's failure, and that process says why
        this.destroy(Object.assign(new Error('The process fed with the decompressed backup stopped reading it.'), { code: 'EPIPE' }));
        return;
      }
      const how =
        code === 0 ? 'stopped before reading all its input' : signal !== null ? `was killed by ${signal}` : `exited with code ${code}`;
      const tail = this.#stderr.trim().split('\n').slice(-5).join(' | ').slice(-500);
      this.destroy(
        new CofferError('Internal', `Backup ${args.includes('-d') ? 'decompression' : 'compression'} failed: zstd ${how}${tail === '' ? '.' : `: ${tail}`}`, {
          details: this.#stderr,
        }),
      );
    });
  }

  /** zstd's stdin once started, for a process to write into itself (then {@link inputHandedOver}) */
  get stdin(): Writable | undefined {
    return this.#child?.stdin ?? undefined;
  }

  /**
   * The process given {@link stdin} as its stdout was started: our copy of the pipe goes, so that
   * zstd's input ends when that process closes its own (when it exits).
   */
  inputHandedOver(): void {
    if (this.#child === undefined) return;
    this.#inputHandedOver = true;
    this.#inputEnded = true;
    this.#child.stdin!.destroy();
  }

  /** no compression: bytes pass unchanged */
  passThrough(): void {
    if (this.#child === undefined) this.#passThrough = true;
  }

  override _read(): void {
    if (this.#child !== undefined) {
      this.#child.stdout?.resume();
      return;
    }
    const held = this.#heldWrite;
    this.#heldWrite = undefined;
    held?.();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const child = this.#child;
    if (this.#inputHandedOver) {
      callback(new CofferError('Internal', 'The backup codec was given bytes for zstd after another process took over its input.'));
      return;
    }
    if (child !== undefined) {
      if (child.stdin!.write(chunk)) callback();
      // if it dies instead of draining, its close destroys this stream, which drops the callback
      else child.stdin!.once('drain', () => callback());
      return;
    }
    if (!this.#passThrough) {
      callback(new CofferError('Internal', 'The backup codec wrote to zstd before deciding whether to run it.'));
      return;
    }
    if (this.push(chunk)) callback();
    else this.#heldWrite = () => callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#inputEnded = true;
    // handed over: the input ends when the process writing it closes it
    if (this.#child === undefined) this.push(null);
    else if (!this.#inputHandedOver) this.#child.stdin!.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const child = this.#child;
    if (child === undefined || child.pid === undefined || child.exitCode !== null || child.signalCode !== null) {
      callback(error);
      return;
    }
    child.once('exit', () => callback(error));
    child.kill('SIGKILL');
    // a paused stdout would keep its pipe open and the child's close from ever coming
    child.stdin?.destroy();
    child.stdout?.destroy();
  }
}
