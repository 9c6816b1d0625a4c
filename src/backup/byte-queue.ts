// The bytes a stream delivered and a parser has not consumed yet, kept as the chunks they came
// in: taking a run that lies inside one chunk costs no copy.

export class ByteQueue {
  readonly #chunks: Buffer[] = [];
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#length += chunk.length;
  }

  /** up to `n` bytes from the front, left in the queue */
  peek(n: number): Buffer {
    const want = Math.min(n, this.#length);
    const first = this.#chunks[0];
    if (first !== undefined && first.length >= want) return first.subarray(0, want);
    const out = Buffer.allocUnsafe(want);
    let filled = 0;
    for (const chunk of this.#chunks) {
      if (filled === want) break;
      filled += chunk.copy(out, filled, 0, Math.min(chunk.length, want - filled));
    }
    return out;
  }

  /** exactly `n` bytes from the front (the caller checked `length`), removed from the queue */
  take(n: number): Buffer {
    const out = this.peek(n);
    this.skip(n);
    return out;
  }

  /** exactly `n` bytes from the front as the runs of the chunks they lie in (no copy), removed from the queue */
  takeRuns(n: number): Buffer[] {
    const runs: Buffer[] = [];
    let left = n;
    this.#length -= n;
    while (left > 0) {
      const first = this.#chunks[0]!;
      if (first.length > left) {
        runs.push(first.subarray(0, left));
        this.#chunks[0] = first.subarray(left);
        return runs;
      }
      runs.push(first);
      this.#chunks.shift();
      left -= first.length;
    }
    return runs;
  }

  skip(n: number): void {
    let left = n;
    this.#length -= n;
    while (left > 0) {
      const first = this.#chunks[0]!;
      if (first.length > left) {
        this.#chunks[0] = first.subarray(left);
        return;
      }
      this.#chunks.shift();
      left -= first.length;
    }
  }
}
