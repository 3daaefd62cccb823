/**
 * The platform services the library calls but does not implement in its browser-safe core: local file access,
 * checkpoint storage for folder paths, and feature extraction on other threads. Each is a slot on {@link env};
 * `tfjs-transfer/node` fills the empty ones when it is imported (see `installNodeServices`), and an application
 * may fill or replace any of them itself.
 *
 * This module holds only interfaces, so every layer can name them without importing the code behind them.
 * @module
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { ImageDataset, ResizeFit } from './types';

/**
 * File access for local paths. The browser has none; `tfjs-transfer/node` installs one when it is imported.
 * Implementations must never read outside the folder of the `model.json` they were given.
 * @category Environment
 */
export interface FileSystemAdapter {
  /** An IOHandler that loads a `model.json` (and its weight shards) from a local path or `file://` URL. */
  loader(path: string): tf.io.IOHandler;
  /**
   * An IOHandler that saves a model into `directory` (created if missing) as `model.json` + one weight shard,
   * atomically: a crash or a full disk leaves any previous model there intact.
   */
  saver(directory: string): tf.io.IOHandler;
  /**
   * Opens an image folder as training (and validation) datasets, for `transferLearn({ data: path })`.
   * Installed by `tfjs-transfer/node` (its `imageFolder`).
   */
  openImageFolder?: (
    dir: string,
    options: { size: readonly [number, number]; seed: number; validationSplit: number; fit: ResizeFit },
  ) => Promise<{
    /** Training images. */
    train: ImageDataset;
    /** Validation images (the folder's validation split, or the held-out fraction). */
    validation?: ImageDataset;
    /** Class names, from the folder names. */
    classes: readonly string[];
  }>;
  /**
   * Decodes one local image file into raw RGB pixels `[h, w, 3]` (0..255, float32), for `predict(model, path)`.
   * Installed by `tfjs-transfer/node` (sharp). The caller disposes the tensor.
   */
  decodeImageFile?: (path: string) => Promise<tf.Tensor3D>;
  /**
   * Writes `bytes` to the file `path` (a path or `file://` URL) atomically: a crash or a full disk leaves any previous
   * file there intact. Used by `exportOnnx(model, path)` (`tfjs-transfer/onnx`). Installed by `tfjs-transfer/node`.
   */
  writeFile?: (path: string, bytes: Uint8Array) => Promise<void>;
}

/**
 * Where checkpoints live. Implementations must make `write` atomic: readers see the old bytes or the new ones.
 * @category Step 4: Train
 */
export interface CheckpointStore {
  /** Where the checkpoint is, for messages (a path, a key). */
  readonly location: string;
  /** The bytes of the last checkpoint, or `undefined` when there is none. */
  read(): Promise<Uint8Array | undefined>;
  /** Replaces the checkpoint with `bytes`, atomically; on failure the previous checkpoint must stay readable. */
  write(bytes: Uint8Array): Promise<void>;
  /** Deletes the checkpoint (optional). */
  clear?(): Promise<void>;
}

/**
 * A frozen prefix compiled into a portable program with its weights, as the library hands it to a
 * {@link ParallelExtractor}. Its layout is internal to the library: pass it on unchanged.
 * @category Advanced
 */
export interface PortableProgram {
  /** The program (internal layout). */
  readonly plan: unknown;
  /** Weight values referenced by the program, in order. */
  readonly weights: Float32Array[];
}

/**
 * Feature extraction on other threads (Node: `worker_threads`), installed into `env.parallelExtractor` by
 * `tfjs-transfer/node`. The browser-safe core only calls this interface; it never imports Node code.
 * @category Advanced
 */
export interface ParallelExtractor {
  /**
   * Prepares the workers for one extraction job. `program()` gives the folded frozen prefix with its weights (or
   * `undefined` when it cannot leave this thread). Resolves `undefined` to extract in the calling thread instead
   * (e.g. the backend is not one the workers can run, or the job is too small to pay for the workers).
   */
  open(program: () => PortableProgram | undefined, job: { backend: string; images: number }): Promise<ParallelRun | undefined>;
  /**
   * Optional: ends the workers, giving their memory back (a later {@link ParallelExtractor.open} starts them
   * again). `fit` calls it once the activations of a spatial freeze boundary (fine-tuning) are cached and no epoch
   * extracts again: each worker's wasm heap (about 300 MB for MobileNetV2 1.0 at 224) never shrinks, and the training
   * steps that follow need the memory more than a second of restart time. The Node pool (`createExtractPool`) has it.
   */
  dispose?(): Promise<void>;
}

/**
 * One extraction job on a {@link ParallelExtractor}.
 * @category Advanced
 */
export interface ParallelRun {
  /** Activations of a batch of raw pixels `[n, h, w, 3]`: one `Float32Array` of `n * size` floats per output. */
  run(pixels: Float32Array, shape: [number, number, number, number]): Promise<Float32Array[]>;
  /** Frees the job's weights in the workers (the workers stay up for the next job). Safe to call twice. */
  dispose(): void;
}

/**
 * The trainable top of a model (the layers above the freeze boundary), portable to another thread, as the library
 * hands it to a {@link ParallelTrainer}. Its layout is internal to the library: pass it on unchanged.
 * @category Advanced
 */
export interface PortableTop {
  /** The top's tfjs-layers model topology (`LayersModel.toJSON(null, false)`). */
  readonly topology: unknown;
  /** Every weight of the top, in the order of its `weights`. */
  readonly weights: ReadonlyArray<{
    /** The weight's name (for messages). */
    readonly name: string;
    /** Its shape. */
    readonly shape: readonly number[];
    /** Its values at the start of the job. */
    readonly values: Float32Array;
  }>;
  /** Number of classes of the head (2: one sigmoid unit, else a softmax). */
  readonly numClasses: number;
}

/**
 * One batch of a gradient step, as {@link ParallelTraining.gradients} takes it.
 * @category Advanced
 */
export interface GradientBatch {
  /** The boundary activations of the batch: one `Float32Array` of `n * size` floats per boundary output. */
  readonly inputs: readonly Float32Array[];
  /** The class index of each row. */
  readonly labels: Int32Array;
  /** Per-row loss weights (`classWeight`), or `undefined` for all 1. */
  readonly sampleWeights: Float32Array | undefined;
  /** The seed of each dropout layer of the top for this step, in layer order. */
  readonly dropoutSeeds: readonly number[];
}

/**
 * What a {@link ParallelTrainer} is asked to take.
 * @category Advanced
 */
export interface TrainingJob {
  /** The active tfjs backend (`tf.getBackend()`). */
  readonly backend: string;
  /** Rows per batch. */
  readonly batchSize: number;
  /** Shape of one row's activations per boundary output (e.g. `[[14, 14, 96]]` when fine-tuning from `block_11_expand`). */
  readonly boundaryShapes: readonly (readonly number[])[];
  /** Trainable parameters of the top. */
  readonly parameters: number;
}

/**
 * Data-parallel training on other threads (Node: `worker_threads`), installed into `env.parallelTrainer` by
 * `tfjs-transfer/node`: each worker computes the gradients of its share of every batch, the calling thread adds
 * them and applies the optimizer. The browser-safe core only calls this interface.
 * @category Advanced
 */
export interface ParallelTrainer {
  /**
   * Prepares the workers for one training job. `top()` gives the trainable top with its weights. Resolves
   * `undefined` to train in the calling thread instead (e.g. the backend is not one the workers run, or the job
   * is too small to pay for the workers).
   */
  openTraining(top: () => PortableTop, job: TrainingJob): Promise<ParallelTraining | undefined>;
}

/**
 * One training job on a {@link ParallelTrainer}.
 * @category Advanced
 */
export interface ParallelTraining {
  /** Number of threads sharing each batch. */
  readonly workers: number;
  /**
   * The gradients of the batch's mean loss (plus the top's regularization losses) with respect to the top's
   * trainable weights, at `weights` (their current values, in the order of the top's `trainableWeights`), with the
   * batch's loss and its number of correct predictions. The result equals one thread's computation up to float
   * rounding, and depends only on the inputs and the number of workers.
   */
  gradients(
    weights: readonly Float32Array[],
    batch: GradientBatch,
  ): Promise<{
    /**
     * One gradient per trainable weight, in the order of `weights`. They may be views of a buffer the job reuses
     * at its next call (the worker pool's are): copy them to keep them.
     */
    grads: Float32Array[];
    /** The batch's loss (mean cross-entropy plus regularization). */
    loss: number;
    /** Correct predictions in the batch. */
    correct: number;
    /**
     * The sum of the squares of all of `grads`, when the trainer computes it on its threads (the worker pool
     * does); the caller computes it otherwise.
     */
    squaredNorm?: number;
  }>;
  /**
   * Scores rows in inference mode at `weights` (e.g. the validation pass after each epoch): the summed
   * cross-entropy of the rows and their number of correct predictions. Each worker scores a contiguous share.
   */
  evaluate(
    weights: readonly Float32Array[],
    rows: {
      /** The rows' boundary activations, one array per boundary output. */
      readonly inputs: readonly Float32Array[];
      /** The class index of each row. */
      readonly labels: Int32Array;
    },
  ): Promise<{
    /** The summed cross-entropy of the rows. */
    lossSum: number;
    /** Correct predictions among the rows. */
    correct: number;
  }>;
  /** Frees the job in the workers (the workers stay up for the next job). Safe to call twice. */
  dispose(): void;
}

/**
 * Scratch files for cached activations too large to keep in memory (see `FitArgs.activationStorage`), installed
 * into `env.activationSpill` by `tfjs-transfer/node`. Reads and writes are synchronous positioned I/O, because a
 * training step gathers its batch synchronously; the rows a batch needs are read, nothing else.
 * @category Advanced
 */
export interface ActivationSpill {
  /**
   * Creates a scratch file of `bytes` bytes in `options.directory` (the OS temp folder when `undefined`). The file
   * must be removed at the latest when {@link SpillFile.close} is called (the Node service removes its name at
   * once, so even a killed process leaves nothing behind on POSIX systems).
   */
  open(bytes: number, options: { directory: string | undefined }): SpillFile;
}

/**
 * One scratch file of an {@link ActivationSpill}.
 * @category Advanced
 */
export interface SpillFile {
  /** Where the file is (for messages). */
  readonly path: string;
  /** Writes `bytes` at byte `position`. */
  write(position: number, bytes: Uint8Array): void;
  /** Fills `into` with the bytes from byte `position`. */
  read(position: number, into: Uint8Array): void;
  /** Closes and deletes the file. Safe to call twice. */
  close(): void;
}
