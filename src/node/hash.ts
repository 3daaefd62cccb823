/**
 * Content hashes: datasets read from files are keyed by what the files hold, so feature caches survive renames
 * and never confuse two different images with the same name.
 * @module
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';

/** Hex characters kept from the sha256 digest (128 bits): collisions are not a practical concern. */
export const CONTENT_HASH_LENGTH = 32;

/**
 * The content key of some bytes: sha256, hex, truncated to {@link CONTENT_HASH_LENGTH} characters.
 *
 * @example
 * ```ts
 * contentHash(await readFile('cat.jpg')); // 'a3f1...' (32 hex characters)
 * ```
 */
export function contentHash(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, CONTENT_HASH_LENGTH);
}

/**
 * The content key of a file (see {@link contentHash}).
 *
 * @example
 * ```ts
 * const key = await hashFile('photos/cats/1.jpg');
 * ```
 */
export async function hashFile(path: string): Promise<string> {
  return contentHash(await readFile(path));
}
