/**
 * The Node {@link ActivationSpill}: cached activations that do not fit `fit`'s memory budget go to a scratch file
 * under the OS temp folder (or the disk cache's folder), read back with positioned reads (`fs.readSync` at an
 * offset) of just the rows a batch needs. The file's name is removed as soon as it is open (POSIX keeps the data
 * until the descriptor closes), so nothing is left behind, not even by a killed process; where that is refused
 * (Windows), the file is deleted on `close`. The operating system's page cache holds recently read rows; it is not
 * counted in the process's resident memory.
 * @module
 */
import { closeSync, mkdirSync, openSync, readSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import { randomBytes } from 'node:crypto';
import { TransferError } from '../errors';
import type { ActivationSpill, SpillFile } from '../services';

/**
 * Options of {@link createActivationSpill}.
 * @category Node
 */
export interface ActivationSpillArgs {
  /**
   * Folder of the scratch files when `fit` names none (it names the disk cache's folder when one is given).
   * @defaultValue `os.tmpdir()`
   */
  directory?: string;
}

/** One open scratch file. */
class NodeSpillFile implements SpillFile {
  private fd: number | undefined;
  private unlinked = false;
  constructor(
    readonly path: string,
    bytes: number,
  ) {
    this.fd = openSync(path, 'wx+', 0o600);
    try {
      unlinkSync(path);
      this.unlinked = true;
    } catch {
      // Windows refuses to delete an open file: deleted on close instead.
    }
    if (bytes > 0) writeSync(this.fd, new Uint8Array(1), 0, 1, bytes - 1); // the full length up front (sparse)
  }
  private descriptor(): number {
    if (this.fd === undefined) throw new TransferError('INVALID_ARGUMENT', `The activation spill file ${this.path} is closed.`);
    return this.fd;
  }
  write(position: number, bytes: Uint8Array): void {
    const fd = this.descriptor();
    for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done, position + done);
  }
  read(position: number, into: Uint8Array): void {
    const fd = this.descriptor();
    for (let done = 0; done < into.length; ) {
      const got = readSync(fd, into, done, into.length - done, position + done);
      if (got === 0) throw new TransferError('NUMERICAL_FAULT', `The activation spill file ${this.path} ended early (at byte ${position + done}).`);
      done += got;
    }
  }
  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    closeSync(fd);
    if (!this.unlinked) rmSync(this.path, { force: true });
  }
}

/**
 * The Node activation spill (what `tfjs-transfer/node` installs into `env.activationSpill`): scratch files named
 * `tfjs-transfer-activations-<random>.bin`, unlinked at once, closed (and so deleted) when `fit` ends, also on an
 * error or an abort.
 *
 * @category Node
 * @example
 * ```ts
 * import { env, createActivationSpill } from 'tfjs-transfer/node';
 * env.activationSpill = createActivationSpill({ directory: '/mnt/scratch' }); // a roomier disk than /tmp
 * ```
 */
export function createActivationSpill(args: ActivationSpillArgs = {}): ActivationSpill {
  return {
    open(bytes, options) {
      const dir = options.directory ?? args.directory ?? tmpdir();
      mkdirSync(dir, { recursive: true });
      const path = nodePath.join(dir, `tfjs-transfer-activations-${randomBytes(8).toString('hex')}.bin`);
      return new NodeSpillFile(path, bytes);
    },
  };
}
