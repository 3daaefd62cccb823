/**
 * Rows of numbers stored compactly as base64 text (the unknown detector's prototypes in `model.json`): float16 (2
 * bytes a value), or per-row affine codes of 8 or 4 bits (`uint8`, `uint4`: a float32 minimum and step per row,
 * then one code per value). Pure JavaScript, the same bytes in Node and in browsers.
 * @module
 */
import { decodeFloat16, encodeFloat16, fromBase64, toBase64 } from './float16';

/** How stored rows encode their values, from the most exact to the most compact. @internal */
export type RowEncoding = 'float16' | 'uint8' | 'uint4';

/** The encodings, from the most exact to the most compact. @internal */
export const ROW_ENCODINGS: readonly RowEncoding[] = Object.freeze(['float16', 'uint8', 'uint4']);

const BITS: Record<'uint8' | 'uint4', number> = { uint8: 8, uint4: 4 };
/** Bytes of a row's header (float32 minimum and step). */
const HEADER = 8;

function rowBytes(dim: number, encoding: 'uint8' | 'uint4'): number {
  return HEADER + Math.ceil((dim * BITS[encoding]) / 8);
}

/** Length of the base64 text {@link encodeRows} writes for `rows` rows of `dim` values. @internal */
export function encodedRowsLength(rows: number, dim: number, encoding: RowEncoding): number {
  const bytes = encoding === 'float16' ? rows * dim * 2 : rows * rowBytes(dim, encoding);
  return Math.ceil(bytes / 3) * 4;
}

/**
 * `values` (`[rows, dim]` row-major) as base64 text. `uint8` / `uint4`: each row maps its range `[min, max]` onto
 * 256 / 16 evenly spaced levels, rounding to the nearest, so a value is off by at most half a step
 * (`(max - min) / 510` or `/ 30`). @internal
 */
export function encodeRows(values: Float32Array, dim: number, encoding: RowEncoding): string {
  if (encoding === 'float16') return encodeFloat16(values);
  const rows = values.length / dim;
  const levels = 2 ** BITS[encoding] - 1;
  const per = rowBytes(dim, encoding);
  const bytes = new Uint8Array(rows * per);
  const view = new DataView(bytes.buffer);
  for (let r = 0; r < rows; r++) {
    const row = values.subarray(r * dim, (r + 1) * dim);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of row) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
    const min = Math.fround(lo);
    const step = Math.fround(hi > min ? (hi - min) / levels : 1);
    const o = r * per;
    view.setFloat32(o, min, true);
    view.setFloat32(o + 4, step, true);
    for (let i = 0; i < dim; i++) {
      const code = Math.min(levels, Math.max(0, Math.round((row[i]! - min) / step)));
      if (encoding === 'uint8') bytes[o + HEADER + i] = code;
      else bytes[o + HEADER + (i >> 1)]! |= i & 1 ? code << 4 : code;
    }
  }
  return toBase64(bytes);
}

/**
 * The `[rows, dim]` values of {@link encodeRows}'s text, or `undefined` when `text` is not such a text (wrong
 * length, not base64, a non-finite header). @internal
 */
export function decodeRows(text: unknown, rows: number, dim: number, encoding: RowEncoding): Float32Array | undefined {
  if (encoding === 'float16') return decodeFloat16(text, rows * dim);
  if (typeof text !== 'string' || !ROW_ENCODINGS.includes(encoding)) return undefined;
  const bytes = fromBase64(text);
  const per = rowBytes(dim, encoding);
  if (!bytes || bytes.length !== rows * per) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    const o = r * per;
    const min = view.getFloat32(o, true);
    const step = view.getFloat32(o + 4, true);
    if (!Number.isFinite(min) || !Number.isFinite(step)) return undefined;
    for (let i = 0; i < dim; i++) {
      const b = bytes[o + HEADER + (encoding === 'uint8' ? i : i >> 1)]!;
      const code = encoding === 'uint8' ? b : i & 1 ? b >> 4 : b & 15;
      out[r * dim + i] = min + code * step;
    }
  }
  return out;
}
