/**
 * Where cached activations live: rows (one image's values of one boundary output, in one view) behind one small
 * interface, {@link RowStore}, with three implementations: float32 in memory (exact), float16 in memory (half the
 * bytes; round-to-nearest-even, decoded by table) and rows in a scratch file of the platform's
 * {@link ActivationSpill} (Node: `tfjs-transfer/node`), read back with positioned reads of just the rows a batch
 * needs. Browser-safe: the file itself is a platform service.
 * @internal
 * @module
 */
import type { ActivationSpill, SpillFile } from '../services';
import { decodeHalfInto, encodeHalfInto } from '../util/float16';

/** How the values of a row are encoded. */
export type RowEncoding = 'float32' | 'float16';

/** Bytes a value takes in `encoding`. @internal */
export const BYTES_PER_VALUE: Readonly<Record<RowEncoding, number>> = Object.freeze({ float32: 4, float16: 2 });

/** `rows` rows of `size` values each, read and written one run of rows at a time. */
export interface RowStore {
  /** Rows it holds (its capacity). */
  readonly rows: number;
  /** Values per row. */
  readonly size: number;
  readonly encoding: RowEncoding;
  /** Writes `values.length / size` consecutive rows from row `row`. */
  write(row: number, values: Float32Array): void;
  /** Decodes row `row` into `out` from `offset` (`size` values). */
  read(row: number, out: Float32Array, offset: number): void;
}

/** Float32 rows in memory: reads are exact copies. */
class Float32Rows implements RowStore {
  readonly encoding = 'float32';
  private readonly data: Float32Array;
  constructor(
    readonly rows: number,
    readonly size: number,
  ) {
    this.data = new Float32Array(rows * size);
  }
  write(row: number, values: Float32Array): void {
    this.data.set(values, row * this.size);
  }
  read(row: number, out: Float32Array, offset: number): void {
    out.set(this.data.subarray(row * this.size, (row + 1) * this.size), offset);
  }
}

/** Float16 rows in memory: half the bytes, relative error at most 2^-11 (see `encodeHalfInto`). */
class Float16Rows implements RowStore {
  readonly encoding = 'float16';
  private readonly data: Uint16Array;
  constructor(
    readonly rows: number,
    readonly size: number,
  ) {
    this.data = new Uint16Array(rows * size);
  }
  write(row: number, values: Float32Array): void {
    encodeHalfInto(values, this.data, row * this.size);
  }
  read(row: number, out: Float32Array, offset: number): void {
    decodeHalfInto(this.data, row * this.size, this.size, out, offset);
  }
}

/** Rows in a region of a spill file, from byte `base`; encoded as `encoding` there. */
class SpilledRows implements RowStore {
  private readonly rowBytes: number;
  private scratch: ArrayBuffer;
  constructor(
    readonly rows: number,
    readonly size: number,
    readonly encoding: RowEncoding,
    private readonly file: SpillFile,
    private readonly base: number,
  ) {
    this.rowBytes = size * BYTES_PER_VALUE[encoding];
    this.scratch = new ArrayBuffer(this.rowBytes);
  }
  write(row: number, values: Float32Array): void {
    const count = values.length / this.size;
    let bytes: Uint8Array;
    if (this.encoding === 'float32') bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    else {
      const half = new Uint16Array(values.length);
      encodeHalfInto(values, half, 0);
      bytes = new Uint8Array(half.buffer);
    }
    this.file.write(this.base + row * this.rowBytes, bytes.subarray(0, count * this.rowBytes));
  }
  read(row: number, out: Float32Array, offset: number): void {
    const bytes = new Uint8Array(this.scratch);
    this.file.read(this.base + row * this.rowBytes, bytes);
    if (this.encoding === 'float32') out.set(new Float32Array(this.scratch), offset);
    else decodeHalfInto(new Uint16Array(this.scratch), 0, this.size, out, offset);
  }
}

/**
 * Storage for one set of activations: `rows[view][output]`, and what frees it (closes and deletes a spill file;
 * nothing for memory). @internal
 */
export interface RowAllocation {
  rows: RowStore[][];
  /** Frees the storage. Safe to call twice. */
  dispose(): void;
  /** Where the rows are, for messages: `'memory'` or the spill file's path. */
  where: string;
}

/** How a set of activations is stored: one encoding per boundary output, in memory or spilled to a file. @internal */
export interface RowStorage {
  /** Encoding of each boundary output. */
  encodings: RowEncoding[];
  /** The spill service and its folder, when the rows go to a file. */
  spill?: { service: ActivationSpill; directory: string | undefined };
  /** Allocates `views` x `sizes.length` stores of `rows` rows. */
  allocate(rows: number, sizes: number[], views: number): RowAllocation;
}

/** A {@link RowStorage} with these encodings, in memory or (with `spill`) in a scratch file. @internal */
export function rowStorage(encodings: RowEncoding[], spill?: RowStorage['spill']): RowStorage {
  const storage: RowStorage = {
    encodings,
    spill,
    allocate(rows, sizes, views) {
      const enc = (j: number): RowEncoding => encodings[j] ?? encodings[encodings.length - 1] ?? 'float32';
      if (!spill) {
        const make = (s: number, j: number): RowStore => (enc(j) === 'float16' ? new Float16Rows(rows, s) : new Float32Rows(rows, s));
        return { rows: Array.from({ length: views }, () => sizes.map(make)), dispose: () => undefined, where: 'memory' };
      }
      const perView = sizes.reduce((a, s, j) => a + rows * s * BYTES_PER_VALUE[enc(j)], 0);
      const file = spill.service.open(perView * views, { directory: spill.directory });
      let base = 0;
      const stores = Array.from({ length: views }, () =>
        sizes.map((s, j) => {
          const store = new SpilledRows(rows, s, enc(j), file, base);
          base += rows * s * BYTES_PER_VALUE[enc(j)];
          return store;
        }),
      );
      return { rows: stores, dispose: () => file.close(), where: file.path };
    },
  };
  return storage;
}

/** Float32 in memory: what extraction uses when nothing else is asked (evaluate, calibrate, the detector). @internal */
export const FLOAT32_IN_MEMORY: RowStorage = rowStorage(['float32']);

/** Row `from` of `src` copied into row `to` of `dst` through `scratch` (at least `src.size` values). @internal */
export function copyRow(src: RowStore, from: number, dst: RowStore, to: number, scratch: Float32Array): void {
  const row = scratch.length === src.size ? scratch : scratch.subarray(0, src.size);
  src.read(from, row, 0);
  dst.write(to, row);
}
