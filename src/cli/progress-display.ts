import type { OutputStream } from './cli-io.js';

const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const clearLine = '\r\x1b[2K';

/**
 * Live progress of a wait. On a terminal one spinner line is rewritten in place; anywhere else
 * (a log, a pipe, CI) each change of state is one plain line, so the output stays readable.
 */
export class ProgressDisplay {
  private readonly startedAt = Date.now();
  private frame = 0;
  private lastState: string | undefined;
  private lineDrawn = false;

  constructor(
    private readonly out: OutputStream,
    private readonly label: string,
  ) {}

  update(state: string): void {
    const elapsed = `${this.elapsedSeconds()}s`;
    if (this.out.isTTY === true) {
      const spinner = frames[this.frame % frames.length] ?? '';
      this.frame += 1;
      this.out.write(`${clearLine}${spinner} ${this.label}: ${state} (${elapsed})`);
      this.lineDrawn = true;
    } else if (state !== this.lastState) {
      this.out.write(`${this.label}: ${state} (${elapsed})\n`);
    }
    this.lastState = state;
  }

  /** Clears the live line, so what is printed next starts on a clean line. */
  stop(): void {
    if (this.lineDrawn) this.out.write(clearLine);
    this.lineDrawn = false;
  }

  /** whole seconds while waiting; tenths once done, since most creates take about a second */
  elapsedSeconds(precise = false): string {
    const seconds = (Date.now() - this.startedAt) / 1000;
    return precise ? seconds.toFixed(1) : String(Math.floor(seconds));
  }
}
