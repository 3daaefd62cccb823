/**
 * `calibrate` (step 5): temperature scaling of the model's probabilities, fitted on held-out images and applied
 * inside the weights, with an honest (cross-validated) measure of what it gained.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { nodeInputs } from '../backbone/graph';
import { TransferError, check, throwIfAborted } from '../errors';
import { TransferModel, type Calibration } from '../transfer-model';
import { extractActivations, gatherBatch, type Activations } from '../train/activations';
import { freezeBoundaryOf } from '../train/boundary';
import type { KeptActivations } from '../train/kept-activations';
import { toLabelledSource } from '../train/source';
import type { LabelledData } from '../types';
import { withDefaults } from '../util/args';
import { reliabilityOf } from './metrics';

/** Defaults of {@link calibrate}. @category Step 5: Evaluate */
export const CALIBRATE_DEFAULTS = Object.freeze({
  /** Folds of the cross-validation that measures the calibration error after calibrating. */
  folds: 5 as number,
  /** Images per forward pass. */
  batchSize: 32 as number,
  /** Smallest temperature considered. */
  minTemperature: 0.05 as number,
  /** Largest temperature considered. */
  maxTemperature: 20 as number,
});

/** Options of {@link calibrate}. An option given as `undefined` or `null` takes its default. @category Step 5: Evaluate */
export interface CalibrateArgs {
  /**
   * Folds of the cross-validation behind `eceAfter`: the images are split into this many stratified folds; each
   * fold is predicted with a temperature fitted on the others, and the calibration error is measured on those
   * pooled held-out predictions. Fewer images than folds: one fold per image.
   * @defaultValue {@link CALIBRATE_DEFAULTS}.folds (5)
   */
  folds?: number;
  /** Images per forward pass. @defaultValue {@link CALIBRATE_DEFAULTS}.batchSize (32) */
  batchSize?: number;
  /** Smallest temperature considered. @defaultValue {@link CALIBRATE_DEFAULTS}.minTemperature (0.05) */
  minTemperature?: number;
  /** Largest temperature considered. @defaultValue {@link CALIBRATE_DEFAULTS}.maxTemperature (20) */
  maxTemperature?: number;
  /** Stops within one batch; `calibrate` then rejects with an `AbortError` and the model is unchanged. @defaultValue none */
  signal?: AbortSignal;
  /**
   * The frozen-prefix activations of `data` kept by `fit` (`history.validationActivations`, as for
   * {@link evaluate}): the backbone then does not run again. Checked to belong to this model and data.
   * @defaultValue none (the frozen prefix runs over `data`)
   */
  activations?: KeptActivations;
}

/** The last Dense layer of the trainable top, and the part of the top below it. */
interface LogitHead {
  dense: tfl.layers.Layer;
  /** The top up to the Dense layer's input; `undefined` when the Dense layer takes the boundary itself. */
  below: tfl.LayersModel | undefined;
  activation: 'sigmoid' | 'softmax';
  units: number;
}

function logitHead(top: tfl.LayersModel, k: number): LogitHead {
  const out = top.outputs[0]!;
  const dense = out.sourceLayer;
  const kind = dense.getClassName();
  const activation = kind === 'Dense' ? (dense.getConfig() as { activation?: string }).activation : undefined;
  if (top.outputs.length !== 1 || kind !== 'Dense' || (activation !== 'sigmoid' && activation !== 'softmax')) {
    const what = kind === 'Dense' ? `a Dense layer with a ${String(activation)} activation` : `a ${kind} layer, not a Dense layer`;
    throw new TransferError(
      'NOT_SUPPORTED',
      `calibrate: the head's output layer "${dense.name}" is ${what}. Temperature scaling divides the last Dense layer's kernel and bias by the ` +
        `temperature, so the head must end in a Dense layer with a sigmoid or softmax activation (as attachHead builds it), and that layer must not be frozen.`,
    );
  }
  const units = (dense.getConfig() as { units: number }).units;
  const fits = activation === 'sigmoid' ? units === 1 && k === 2 : units === k;
  if (!fits) throw new TransferError('NOT_SUPPORTED', `calibrate: the output layer "${dense.name}" has ${units} ${activation} units for ${k} classes.`);
  const input = nodeInputs(out)[0]!;
  const below = top.inputs.includes(input) ? undefined : tfl.model({ inputs: top.inputs, outputs: input, name: 'tt_logit_input' });
  if ((below ? input.shape.length : top.inputs[0]!.shape.length) !== 2) {
    throw new TransferError('NOT_SUPPORTED', `calibrate: the output layer "${dense.name}" takes a [${input.shape.join(', ')}] input; only a vector input is supported.`);
  }
  return { dense, below, activation, units };
}

/** The exact logits (the output Dense layer without its activation) of every image, `[n, units]`. */
async function logitsOf(head: LogitHead, acts: Activations, batchSize: number, signal: AbortSignal | undefined): Promise<Float64Array> {
  const out = new Float64Array(acts.n * head.units);
  const rows = Array.from({ length: acts.n }, (_, i) => i);
  for (let s = 0; s < acts.n; s += batchSize) {
    throwIfAborted(signal, 'calibrate');
    const z = tf.tidy(() => {
      const inputs = gatherBatch(acts, rows.slice(s, s + batchSize), () => 0);
      const x = head.below ? (head.below.apply(inputs.length === 1 ? inputs[0]! : inputs, { training: false }) as tf.Tensor2D) : (inputs[0] as tf.Tensor2D);
      const [kernel, bias] = head.dense.getWeights();
      const y = tf.matMul(x, kernel as tf.Tensor2D);
      return bias ? tf.add(y, bias) : y;
    });
    try {
      out.set(await z.data(), s * head.units);
    } finally {
      z.dispose();
    }
  }
  return out;
}

/**
 * Mean negative log-likelihood of `labels` under the logits `[n, units]` divided by `temperature`: sigmoid for
 * one unit (label 1 is the positive), softmax otherwise. @internal
 */
export function nllAt(logits: Float64Array, labels: Int32Array, units: number, temperature: number): number {
  const n = labels.length;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    if (units === 1) {
      const z = logits[i]! / temperature;
      sum += Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z))) - (labels[i] === 1 ? z : 0); // softplus(z) - y z
    } else {
      let m = -Infinity;
      for (let c = 0; c < units; c++) m = Math.max(m, logits[i * units + c]! / temperature);
      let e = 0;
      for (let c = 0; c < units; c++) e += Math.exp(logits[i * units + c]! / temperature - m);
      sum += m + Math.log(e) - logits[i * units + labels[i]!]! / temperature;
    }
  }
  return n ? sum / n : 0;
}

/**
 * The temperature in `[min, max]` that minimises {@link nllAt}: golden-section search on log T (the NLL is convex
 * in 1/T, so unimodal in log T), to 1e-10 in log T. @internal
 */
export function fitTemperature(logits: Float64Array, labels: Int32Array, units: number, min = CALIBRATE_DEFAULTS.minTemperature, max = CALIBRATE_DEFAULTS.maxTemperature): number {
  const f = (u: number) => nllAt(logits, labels, units, Math.exp(u));
  const g = (Math.sqrt(5) - 1) / 2;
  let a = Math.log(min);
  let b = Math.log(max);
  let c = b - g * (b - a);
  let d = a + g * (b - a);
  let fc = f(c);
  let fd = f(d);
  while (b - a > 1e-10) {
    if (fc <= fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - g * (b - a);
      fc = f(c);
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + g * (b - a);
      fd = f(d);
    }
  }
  return Math.exp((a + b) / 2);
}

/** Class probabilities `[n, k]` (two columns for one sigmoid unit) of logits divided by `temperature`. @internal */
export function probabilitiesAt(logits: Float64Array, units: number, temperature: number): Float64Array {
  const n = logits.length / units;
  const k = units === 1 ? 2 : units;
  const out = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    if (units === 1) {
      const p = 1 / (1 + Math.exp(-logits[i]! / temperature));
      out[i * 2] = 1 - p;
      out[i * 2 + 1] = p;
      continue;
    }
    let m = -Infinity;
    for (let c = 0; c < k; c++) m = Math.max(m, logits[i * k + c]! / temperature);
    let e = 0;
    for (let c = 0; c < k; c++) e += out[i * k + c] = Math.exp(logits[i * k + c]! / temperature - m);
    for (let c = 0; c < k; c++) out[i * k + c]! /= e;
  }
  return out;
}

/**
 * Stratified folds: the images of each class, in order, are dealt round-robin to `folds` folds (the count running
 * on across classes, so folds differ in size by at most one). Deterministic. @internal
 */
export function foldsOf(labels: Int32Array, folds: number): Int32Array {
  const out = new Int32Array(labels.length);
  const classes = labels.reduce((m, y) => Math.max(m, y + 1), 0);
  let next = 0;
  for (let c = 0; c < classes; c++) for (let i = 0; i < labels.length; i++) if (labels[i] === c) out[i] = next++ % folds;
  return out;
}

function rowsOf<T extends Float64Array | Int32Array>(values: T, width: number, rows: number[], make: (n: number) => T): T {
  const out = make(rows.length * width);
  rows.forEach((r, i) => out.set(values.subarray(r * width, (r + 1) * width), i * width));
  return out;
}

/**
 * The calibration error after temperature scaling, measured on images the temperature never saw: each fold's
 * probabilities at the temperature fitted on the other folds, pooled, then {@link reliabilityOf}. @internal
 */
export function crossValidatedEce(logits: Float64Array, labels: Int32Array, units: number, folds: number, min: number, max: number): number {
  const n = labels.length;
  const k = units === 1 ? 2 : units;
  const fold = foldsOf(labels, folds);
  const pooled = new Float64Array(n * k);
  for (let f = 0; f < folds; f++) {
    const held: number[] = [];
    const rest: number[] = [];
    for (let i = 0; i < n; i++) (fold[i] === f ? held : rest).push(i);
    if (held.length === 0) continue;
    const t = fitTemperature(rowsOf(logits, units, rest, (m) => new Float64Array(m)), rowsOf(labels, 1, rest, (m) => new Int32Array(m)), units, min, max);
    const p = probabilitiesAt(rowsOf(logits, units, held, (m) => new Float64Array(m)), units, t);
    held.forEach((r, i) => pooled.set(p.subarray(i * k, (i + 1) * k), r * k));
  }
  return reliabilityOf(pooled, labels, k).ece;
}

/**
 * Calibrates the model's probabilities by temperature scaling (Guo et al., 2017), on held-out labelled images
 * (validation data: never the images the head was trained on).
 *
 * One temperature T is fitted by minimising the negative log-likelihood of the images' exact logits divided by T
 * (golden-section search on log T within `[minTemperature, maxTemperature]`), and applied **inside the weights**:
 * the head's last Dense layer's kernel and bias are divided by T, since logits / T = (W / T) x + b / T. The
 * accuracy and every ranking are unchanged; the saved artefact is still a stock TF.js layers model, and every
 * backend gives the calibrated probabilities with no extra operation. A head with hidden layers works the same
 * (only the last Dense layer is scaled).
 *
 * The figures are honest: `eceBefore` is the expected calibration error (15 bins) of the model as it was;
 * `eceAfter` is measured by `folds`-fold cross-validation over the images (each fold predicted with a temperature
 * fitted on the others); the temperature applied is then fitted on all of them. The record is kept on the model
 * (`model.calibration`) and saved with it. Calling `calibrate` again fits a temperature for the calibrated model;
 * the record's temperature is then the product of both.
 *
 * @returns The calibration record, also in `model.calibration`.
 * @throws TransferError `NOT_SUPPORTED` when the head does not end in a Dense layer with a sigmoid or softmax
 *   activation; `EMPTY_DATA` with fewer than two images; `ABORTED` when `signal` fires (the model is then unchanged).
 * @category Step 5: Evaluate
 * @example
 * ```ts
 * const history = await fit(model, train, { validationData: val, keepValidationActivations: true });
 * const record = await calibrate(model, val, { activations: history.validationActivations });
 * console.log(record.temperature, record.eceBefore, record.eceAfter);
 * history.validationActivations?.dispose();
 * await save(model, './calibrated');   // model.json's metadata holds the record
 * ```
 */
export async function calibrate(model: TransferModel, data: LabelledData, args: CalibrateArgs = {}): Promise<Calibration> {
  check(model instanceof TransferModel, `calibrate: expected a TransferModel, got ${Object.prototype.toString.call(model)}.`);
  check(data != null, 'calibrate: data is required: held-out labelled images, { xs, ys } or an ImageDataset.');
  check(args == null || typeof args === 'object', 'calibrate: options must be an object such as { folds: 5 }.');
  const o = withDefaults(args, CALIBRATE_DEFAULTS);
  check(Number.isInteger(o.batchSize) && o.batchSize > 0, `calibrate: batchSize must be a positive integer, got ${o.batchSize}.`);
  check(Number.isInteger(o.folds) && o.folds >= 2, `calibrate: folds must be an integer of at least 2, got ${o.folds}.`);
  check(o.minTemperature > 0 && o.maxTemperature > o.minTemperature && Number.isFinite(o.maxTemperature), `calibrate: need 0 < minTemperature < maxTemperature, got ${o.minTemperature} and ${o.maxTemperature}.`);
  model.assertUsable('calibrate');
  const split = freezeBoundaryOf(model);
  const head = logitHead(split.top, model.numClasses);
  const source = toLabelledSource(data, model.classes, [model.inputShape[0], model.inputShape[1]], 'calibrate');
  const acts = o.activations
    ? await o.activations.activationsFor(model, data, 'calibrate')
    : await extractActivations(split.extractor, split.shapes, source, { batchSize: o.batchSize, views: [], signal: o.signal });
  if (acts.n < 2) throw new TransferError('EMPTY_DATA', `calibrate: needs at least 2 labelled images, got ${acts.n}.`);
  const logits = await logitsOf(head, acts, o.batchSize, o.signal);
  const k = model.numClasses;
  const folds = Math.min(o.folds, acts.n);
  const eceBefore = reliabilityOf(probabilitiesAt(logits, head.units, 1), acts.labels, k).ece;
  const eceAfter = crossValidatedEce(logits, acts.labels, head.units, folds, o.minTemperature, o.maxTemperature);
  const temperature = fitTemperature(logits, acts.labels, head.units, o.minTemperature, o.maxTemperature);
  throwIfAborted(o.signal, 'calibrate');
  tf.tidy(() => head.dense.setWeights(head.dense.getWeights().map((w) => tf.div(w, temperature))));
  const record: Calibration = {
    method: 'temperature',
    temperature: (model.calibration?.temperature ?? 1) * temperature,
    eceBefore,
    eceAfter,
    images: acts.n,
    folds,
  };
  model.setCalibration(record);
  model.setEvaluation(undefined); // the probabilities changed: an earlier evaluation no longer describes them
  return { ...record };
}
