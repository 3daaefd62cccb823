/**
 * A small ZIP reader (stored and deflated entries, via `node:zlib`), enough to unpack a downloaded data set
 * such as the Keras tutorial's `cats_and_dogs_filtered.zip` without a dependency.
 * @internal
 * @module
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { TransferError } from '../errors';

/** One file or folder of a ZIP archive. */
export interface ZipEntry {
  /** Path inside the archive, with `/` separators (folders end with `/`). */
  name: string;
  /** Whether the entry is a folder. */
  directory: boolean;
  /** Size once extracted, in bytes. */
  size: number;
  /** Size in the archive, in bytes. */
  compressedSize: number;
  /** 0: stored, 8: deflated. */
  method: number;
  /** CRC-32 of the extracted bytes. */
  crc32: number;
  /** Offset of the entry's local header in the archive. */
  offset: number;
}

const EOCD = 0x06054b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

function bad(message: string): TransferError {
  return new TransferError('INVALID_ARGUMENT', `ZIP archive: ${message}`);
}

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE 802.3, as ZIP uses) of `bytes`. */
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * Lists the entries of a ZIP archive from its central directory.
 *
 * @throws TransferError when the bytes are not a ZIP archive, or use ZIP64 or encryption.
 */
export function listZip(zip: Uint8Array): ZipEntry[] {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  // The end-of-central-directory record is in the last 22 + 65535 (comment) bytes.
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (view.getUint32(i, true) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw bad('no end-of-central-directory record; the file is not a ZIP archive or is truncated (download it again).');
  const count = view.getUint16(eocd + 10, true);
  const cdSize = view.getUint32(eocd + 12, true);
  const cdOffset = view.getUint32(eocd + 16, true);
  if (count === 0xffff || cdOffset === 0xffffffff || cdSize === 0xffffffff) throw bad('ZIP64 archives are not supported.');
  if (cdOffset + cdSize > eocd) throw bad('the central directory lies outside the file; it is truncated or damaged.');
  const entries: ZipEntry[] = [];
  let p = cdOffset;
  const decoder = new TextDecoder();
  for (let i = 0; i < count; i++) {
    if (p + 46 > zip.length || view.getUint32(p, true) !== CENTRAL) throw bad(`central directory entry ${i} is damaged.`);
    const flags = view.getUint16(p + 8, true);
    const method = view.getUint16(p + 10, true);
    const crc = view.getUint32(p + 16, true);
    const compressedSize = view.getUint32(p + 20, true);
    const size = view.getUint32(p + 24, true);
    const nameLength = view.getUint16(p + 28, true);
    const extraLength = view.getUint16(p + 30, true);
    const commentLength = view.getUint16(p + 32, true);
    const offset = view.getUint32(p + 42, true);
    const name = decoder.decode(zip.subarray(p + 46, p + 46 + nameLength));
    if (flags & 1) throw bad(`"${name}" is encrypted.`);
    if (compressedSize === 0xffffffff || size === 0xffffffff || offset === 0xffffffff) throw bad('ZIP64 archives are not supported.');
    entries.push({ name, directory: name.endsWith('/'), size, compressedSize, method, crc32: crc, offset });
    p += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

/** The extracted bytes of one entry, CRC-checked. */
export function readZipEntry(zip: Uint8Array, entry: ZipEntry): Uint8Array {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const p = entry.offset;
  if (p + 30 > zip.length || view.getUint32(p, true) !== LOCAL) throw bad(`the local header of "${entry.name}" is damaged.`);
  const start = p + 30 + view.getUint16(p + 26, true) + view.getUint16(p + 28, true);
  const raw = zip.subarray(start, start + entry.compressedSize);
  if (raw.length !== entry.compressedSize) throw bad(`"${entry.name}" is truncated.`);
  let data: Uint8Array;
  if (entry.method === 0) data = raw;
  else if (entry.method === 8) {
    try {
      data = inflateRawSync(raw);
    } catch (e) {
      throw bad(`"${entry.name}" cannot be inflated (${e instanceof Error ? e.message : String(e)}).`);
    }
  } else throw bad(`"${entry.name}" uses compression method ${entry.method}; only stored (0) and deflate (8) are supported.`);
  if (data.length !== entry.size) throw bad(`"${entry.name}" has ${data.length} bytes, expected ${entry.size}.`);
  if (crc32(data) !== entry.crc32) throw bad(`"${entry.name}" fails its CRC check; the archive is damaged (download it again).`);
  return data;
}

/** A safe relative path for `name`, or an error for names that would escape the destination ("zip slip"). */
function safePath(name: string): string {
  const parts = name.replace(/\\/g, '/').split('/').filter((s) => s !== '' && s !== '.');
  if (isAbsolute(name) || /^[a-zA-Z]:/.test(name) || parts.includes('..')) throw bad(`entry "${name}" would be written outside the destination folder.`);
  return parts.join(sep);
}

/**
 * Extracts every entry of `zip` into `destination`, atomically: the files are written into a temporary sibling
 * folder that is renamed to `destination` once complete (an interrupted extraction leaves no partial folder).
 * `destination` must not exist yet.
 *
 * @returns The number of files written.
 * @example
 * ```ts
 * await extractZip(await readFile('data.zip'), '/tmp/data');
 * ```
 */
export async function extractZip(zip: Uint8Array, destination: string, options: { onEntry?: (done: number, total: number) => void } = {}): Promise<number> {
  const entries = listZip(zip);
  const target = resolve(destination);
  const temp = `${target}.partial-${process.pid}`;
  await rm(temp, { recursive: true, force: true });
  await mkdir(temp, { recursive: true });
  let files = 0;
  try {
    for (const [i, entry] of entries.entries()) {
      const rel = safePath(entry.name);
      if (rel === '') continue;
      const out = join(temp, rel);
      if (entry.directory) await mkdir(out, { recursive: true });
      else {
        await mkdir(dirname(out), { recursive: true });
        await writeFile(out, readZipEntry(zip, entry));
        files++;
      }
      options.onEntry?.(i + 1, entries.length);
    }
    await mkdir(dirname(target), { recursive: true });
    await rename(temp, target);
  } catch (e) {
    await rm(temp, { recursive: true, force: true });
    throw e;
  }
  return files;
}
