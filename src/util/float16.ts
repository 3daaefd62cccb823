/**
 * IEEE 754 half precision: the bit conversion the float16 weight quantization uses (`artifacts/quantize.ts`), and
 * compact, portable storage of float arrays inside JSON (little-endian, base64) for what a saved model carries in
 * its metadata (the unknown detector's prototypes), where a weight shard would not do: stock
 * `tf.loadLayersModel` refuses weights that no layer owns.
 * Written here because tfjs-core exposes no float16 encoder, and `btoa`/`Buffer` differ between the browser and Node.
 * @internal
 * @module
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The half-precision bits of `value`, rounded to nearest even; overflow gives ±Infinity. @internal */
export function toHalfBits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // underflows to zero
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rest > mid || (rest === mid && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1))) half++; // may carry into the exponent: still correct
  return sign | half;
}

/** The value of half-precision bits. @internal */
export function fromHalfBits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const LOOKUP = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) LOOKUP[ALPHABET.charCodeAt(i)] = i;

/** Standard base64 (with padding) of bytes. @internal */
export function toBase64(bytes: Uint8Array): string {
  let out = '';
  const chunk: string[] = [];
  for (let i = 0; i < bytes.length; i += 3) {
    const a = bytes[i]!;
    const b = i + 1 < bytes.length ? bytes[i + 1]! : 0;
    const c = i + 2 < bytes.length ? bytes[i + 2]! : 0;
    chunk.push(
      ALPHABET[a >> 2]! +
        ALPHABET[((a & 3) << 4) | (b >> 4)]! +
        (i + 1 < bytes.length ? ALPHABET[((b & 15) << 2) | (c >> 6)]! : '=') +
        (i + 2 < bytes.length ? ALPHABET[c & 63]! : '='),
    );
    if (chunk.length === 4096) {
      out += chunk.join('');
      chunk.length = 0;
    }
  }
  return out + chunk.join('');
}

/** Bytes of standard base64; `undefined` when `text` is not valid base64. @internal */
export function fromBase64(text: string): Uint8Array | undefined {
  if (text.length % 4 !== 0) return undefined;
  const pad = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < text.length; i += 4) {
    const q = [0, 1, 2, 3].map((j) => {
      const ch = text.charCodeAt(i + j);
      if (ch === 61 && i + j >= text.length - pad) return 0; // '='
      return ch < 128 ? LOOKUP[ch]! : -1;
    });
    if (q.some((v) => v < 0)) return undefined;
    const n = (q[0]! << 18) | (q[1]! << 12) | (q[2]! << 6) | q[3]!;
    if (o < out.length) out[o++] = (n >> 16) & 255;
    if (o < out.length) out[o++] = (n >> 8) & 255;
    if (o < out.length) out[o++] = n & 255;
  }
  return out;
}

/** `values` as base64 of little-endian half floats (2 bytes per value). @internal */
export function encodeFloat16(values: ArrayLike<number>): string {
  const bytes = new Uint8Array(values.length * 2);
  for (let i = 0; i < values.length; i++) {
    const h = toHalfBits(values[i]!);
    bytes[2 * i] = h & 255;
    bytes[2 * i + 1] = h >>> 8;
  }
  return toBase64(bytes);
}

/** The values of {@link encodeFloat16}'s text, or `undefined` when it is not such a text of `length` values. @internal */
export function decodeFloat16(text: unknown, length: number): Float32Array | undefined {
  if (typeof text !== 'string') return undefined;
  const bytes = fromBase64(text);
  if (!bytes || bytes.length !== length * 2) return undefined;
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = fromHalfBits(bytes[2 * i]! | (bytes[2 * i + 1]! << 8));
  return out;
}

let halfTable: Float32Array | undefined;

/**
 * The value of every half-precision bit pattern (65536 entries, 256 KB, built on first use): decoding a float16
 * array is then one table look-up a value. @internal
 */
export function halfToFloatTable(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = fromHalfBits(h);
  }
  return halfTable;
}

/** Largest finite half-precision value. @internal */
export const HALF_MAX = 65504;

/**
 * Encodes `src` into `dst` from `dstOffset` as half-precision bits, rounded to nearest even (as {@link toHalfBits}),
 * except that finite values beyond the half range saturate to ±{@link HALF_MAX} instead of becoming infinite (a
 * cached activation stays finite); ±Infinity and NaN stay what they are, subnormals are kept (down to 2^-24) and
 * smaller magnitudes become ±0. Works on the float32 bits directly (no per-value conversion). @internal
 */
export function encodeHalfInto(src: Float32Array, dst: Uint16Array, dstOffset = 0): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) {
    const x = bits[i]!;
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    const mant = x & 0x7fffff;
    let h: number;
    if (exp === 0xff) h = sign | 0x7c00 | (mant ? 0x200 : 0);
    else if (exp > 142) h = sign | 0x7bff; // |x| >= 2^16: saturate
    else if (exp >= 113) {
      // normal half: 2^-14 <= |x| < 2^16
      h = ((exp - 112) << 10) | (mant >>> 13);
      const rest = mant & 0x1fff;
      if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++;
      if (h >= 0x7c00) h = 0x7bff; // rounded past HALF_MAX: saturate
      h |= sign;
    } else if (exp >= 102) {
      // subnormal half
      const m = mant | 0x800000;
      const shift = 126 - exp;
      let s = m >>> shift;
      const rest = m & ((1 << shift) - 1);
      const mid = 1 << (shift - 1);
      if (rest > mid || (rest === mid && s & 1)) s++;
      h = sign | s;
    } else h = sign; // below half the smallest subnormal: ±0
    dst[dstOffset + i] = h;
  }
}

/** Decodes `count` half-precision values of `src` from `srcOffset` into `dst` from `dstOffset` (table look-up). @internal */
export function decodeHalfInto(src: Uint16Array, srcOffset: number, count: number, dst: Float32Array, dstOffset: number): void {
  const table = halfToFloatTable();
  for (let i = 0; i < count; i++) dst[dstOffset + i] = table[src[srcOffset + i]!]!;
}
