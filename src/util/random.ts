/**
 * Seeded pseudo-random numbers (mulberry32): fast, 32-bit state, reproducible on every platform.
 *
 * Not exported from the entries, but not marked internal: `augmentImages`' signature names it, and the build
 * strips internal declarations from the published types (`stripInternal`).
 */
export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = (Math.floor(seed) ^ 0x9e3779b9) >>> 0;
  }

  /** The current state, to checkpoint and restore the sequence. */
  getState(): number {
    return this.state;
  }

  setState(state: number): void {
    this.state = state >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** A 31-bit integer seed for an op that takes one (dropout, initialisers). */
  seed(): number {
    return Math.floor(this.next() * 0x7fffffff);
  }

  /** In-place Fisher-Yates shuffle; returns `array`. */
  shuffle<T>(array: T[]): T[] {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = array[i] as T;
      array[i] = array[j] as T;
      array[j] = t;
    }
    return array;
  }
}
