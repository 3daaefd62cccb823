/**
 * SHA-256, the one hash the library keys identities with: the extractor identity of the activation caches, the
 * checksum of checkpoint files, the disk cache's file names and entry checksums. Uses Web Crypto
 * (`crypto.subtle.digest`), present in browsers and in Node 18+ (`globalThis.crypto`, or `node:crypto`'s
 * `webcrypto` installed there by the application on Node 18).
 * @internal
 * @module
 */
import { TransferError } from '../errors';

/** Bytes, or a string hashed as its UTF-8 bytes. @internal */
export type Hashable = Uint8Array | ArrayBufferView | string;

function subtle(): SubtleCrypto {
  const s = (globalThis as { crypto?: { subtle?: SubtleCrypto } }).crypto?.subtle;
  if (!s) {
    throw new TransferError(
      'NOT_SUPPORTED',
      'This environment has no Web Crypto (crypto.subtle), which tfjs-transfer needs to key caches and checkpoints. ' +
        'Use Node 19+ or a browser in a secure context (https or localhost).',
    );
  }
  return s;
}

function bytesOf(part: Hashable): Uint8Array {
  if (typeof part === 'string') return new TextEncoder().encode(part);
  if (part instanceof Uint8Array) return part;
  return new Uint8Array(part.buffer, part.byteOffset, part.byteLength);
}

/**
 * SHA-256 of `parts` (concatenated, each length-prefixed so `['ab', 'c']` and `['a', 'bc']` differ), as 64 hex
 * characters. @internal
 */
export async function sha256Hex(...parts: Hashable[]): Promise<string> {
  const chunks = parts.map(bytesOf);
  const data = parts.length === 1 ? chunks[0]! : lengthPrefixed(chunks);
  // Web Crypto wants a BufferSource backed by a plain ArrayBuffer.
  const view = data.buffer instanceof ArrayBuffer ? data : data.slice();
  const digest = await subtle().digest('SHA-256', view as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** SHA-256 of `parts` as 32 raw bytes. @internal */
export async function sha256Bytes(...parts: Hashable[]): Promise<Uint8Array> {
  const hex = await sha256Hex(...parts);
  return Uint8Array.from({ length: 32 }, (_, i) => parseInt(hex.slice(2 * i, 2 * i + 2), 16));
}

function lengthPrefixed(chunks: Uint8Array[]): Uint8Array {
  const total = chunks.reduce((a, c) => a + 8 + c.byteLength, 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const c of chunks) {
    view.setUint32(at, c.byteLength >>> 0, true);
    view.setUint32(at + 4, Math.floor(c.byteLength / 2 ** 32), true);
    out.set(c, at + 8);
    at += 8 + c.byteLength;
  }
  return out;
}
