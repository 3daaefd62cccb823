/**
 * The model card inside every artefact: written by `save` (`userDefinedMetadata.tfjsTransfer.card`), read back by
 * `loadModel` with every field checked (a file may be edited or hostile: a malformed part is dropped, never
 * trusted), and derived from the metadata alone for files older than cards.
 * @module
 */
import { RESIZE_FITS, type ResizeFit } from '../data/resize';
import type * as tf from '@tensorflow/tfjs-core';
import { QUANTIZATIONS, type WeightQuantization } from '../artifacts/quantize';
import type { ArtefactRecord, EvaluationRecord, ModelCard, TrainingRun } from '../transfer-model';
import { describeUnknownDetector, unknownDetectorFromRecord } from '../unknown-detector';
import { VERSION } from '../util/version';

/** The library's name in a card. @internal */
export const LIBRARY_NAME = 'tfjs-transfer';

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);
const num = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const str = (x: unknown): x is string => typeof x === 'string';

/** The card `save` writes: the model's own card with the artefact part of this save. @internal */
export function cardToWrite(model: { card: ModelCard }, artefact: Omit<ArtefactRecord, 'library' | 'savedAt'>, weightsSha256: string | undefined): ModelCard {
  const card = model.card;
  if (weightsSha256 !== undefined) card.backbone.weightsSha256 = weightsSha256;
  else delete card.backbone.weightsSha256;
  card.artefact = { library: { name: LIBRARY_NAME, version: VERSION }, savedAt: new Date().toISOString(), ...artefact };
  // Plain JSON only (drops undefined fields).
  return JSON.parse(JSON.stringify(card)) as ModelCard;
}

function trainingRunOf(x: unknown): TrainingRun | undefined {
  if (!isObj(x) || !isObj(x.imagesPerClass) || !isObj(x.settings)) return undefined;
  const counts = Object.entries(x.imagesPerClass);
  if (!counts.every(([, v]) => num(v))) return undefined;
  if (!num(x.validationImages) || !num(x.epochs) || !num(x.bestEpoch) || typeof x.stoppedEarly !== 'boolean') return undefined;
  if (!Array.isArray(x.trainedLayers) || !x.trainedLayers.every(str) || !num(x.trainedParameters) || !str(x.finishedAt)) return undefined;
  const s = x.settings;
  if (!str(s.optimizer) || !(s.learningRate === null || num(s.learningRate)) || !num(s.batchSize) || !num(s.seed) || !num(s.validationSplit)) return undefined;
  if (!(s.earlyStoppingPatience === null || num(s.earlyStoppingPatience))) return undefined;
  return {
    imagesPerClass: Object.fromEntries(counts) as Record<string, number>,
    validationImages: x.validationImages,
    epochs: x.epochs,
    bestEpoch: x.bestEpoch,
    stoppedEarly: x.stoppedEarly,
    ...(num(x.valAccuracy) ? { valAccuracy: x.valAccuracy } : {}),
    trainedLayers: [...x.trainedLayers],
    trainedParameters: x.trainedParameters,
    settings: {
      optimizer: s.optimizer,
      learningRate: s.learningRate,
      batchSize: s.batchSize,
      seed: s.seed,
      validationSplit: s.validationSplit,
      augment: JSON.parse(JSON.stringify(s.augment ?? null)) as unknown,
      earlyStoppingPatience: s.earlyStoppingPatience,
    },
    finishedAt: x.finishedAt,
    ...curvesOf(x.curves, x.epochs),
  };
}

/** The per-epoch curves of a stored run, when they are well-formed (a malformed one is dropped: a card never throws). */
function curvesOf(c: unknown, epochs: number): { curves?: TrainingRun['curves'] } {
  if (!isObj(c)) return {};
  const n = Array.isArray(c.loss) && c.loss.length > 0 && c.loss.length <= Math.max(epochs, 1) ? c.loss.length : -1;
  const series = (v: unknown, allowEmpty: boolean): number[] | undefined =>
    Array.isArray(v) && (v.length === n || (allowEmpty && v.length === 0)) && v.every((x) => typeof x === 'number' && Number.isFinite(x)) ? [...(v as number[])] : undefined;
  const loss = series(c.loss, false);
  const accuracy = series(c.accuracy, false);
  const valLoss = series(c.valLoss, true);
  const valAccuracy = series(c.valAccuracy, true);
  return loss && accuracy && valLoss && valAccuracy ? { curves: { loss, accuracy, valLoss, valAccuracy } } : {};
}

function evaluationOf(x: unknown): EvaluationRecord | undefined {
  if (!isObj(x) || !num(x.accuracy) || !num(x.loss) || !num(x.count) || !num(x.macroF1) || !num(x.ece) || !str(x.evaluatedAt) || !Array.isArray(x.perClass)) return undefined;
  const perClass = x.perClass.filter(isObj);
  if (perClass.length !== x.perClass.length || !perClass.every((c) => str(c.name) && num(c.precision) && num(c.recall) && num(c.f1) && num(c.support))) return undefined;
  return {
    accuracy: x.accuracy,
    loss: x.loss,
    count: x.count,
    macroF1: x.macroF1,
    ece: x.ece,
    ...(num(x.rocAuc) ? { rocAuc: x.rocAuc } : {}),
    perClass: perClass.map((c) => ({ name: c.name as string, precision: c.precision as number, recall: c.recall as number, f1: c.f1 as number, support: c.support as number })),
    evaluatedAt: x.evaluatedAt,
  };
}

/** What the weights of the file read are: their bytes and specs (for files without a card). @internal */
export interface ReadWeights {
  bytes: number;
  specs: readonly tf.io.WeightsManifestEntry[];
}

function artefactOf(x: unknown, contents: 'full' | 'head', writtenBy: unknown, weights: ReadWeights): ArtefactRecord {
  const quantizedSpecs = weights.specs.filter((s) => s.quantization).length;
  const fallback: ArtefactRecord = {
    library: { name: str(writtenBy) ? writtenBy : LIBRARY_NAME, version: 'unknown' },
    savedAt: undefined,
    backbone: contents === 'full' ? 'embedded' : 'reference',
    quantization: quantizedSpecs === 0 ? 'float32' : weights.specs.find((s) => s.quantization)!.quantization!.dtype === 'float16' ? 'float16' : 'uint8',
    quantizedWeights: quantizedSpecs,
    float32Weights: weights.specs.length - quantizedSpecs,
    weightBytes: weights.bytes,
  };
  if (!isObj(x)) return fallback;
  const library = isObj(x.library) && str(x.library.name) && str(x.library.version) ? { name: x.library.name, version: x.library.version } : fallback.library;
  const quantization = QUANTIZATIONS.includes(x.quantization as WeightQuantization) ? (x.quantization as WeightQuantization) : fallback.quantization;
  const v = x.verification;
  const verification =
    isObj(v) && num(v.images) && num(v.accuracyBefore) && num(v.accuracyAfter) && num(v.drop) && num(v.maxAccuracyDrop)
      ? {
          images: v.images, accuracyBefore: v.accuracyBefore, accuracyAfter: v.accuracyAfter, drop: v.drop, maxAccuracyDrop: v.maxAccuracyDrop,
          ...(num(v.unknownAcceptedBefore) && num(v.unknownAcceptedAfter) ? { unknownAcceptedBefore: v.unknownAcceptedBefore, unknownAcceptedAfter: v.unknownAcceptedAfter } : {}),
        }
      : undefined;
  return {
    library,
    savedAt: str(x.savedAt) ? x.savedAt : undefined,
    backbone: x.backbone === 'reference' ? 'reference' : x.backbone === 'embedded' ? 'embedded' : fallback.backbone,
    quantization,
    quantizedWeights: num(x.quantizedWeights) ? x.quantizedWeights : fallback.quantizedWeights,
    float32Weights: num(x.float32Weights) ? x.float32Weights : fallback.float32Weights,
    weightBytes: num(x.weightBytes) ? x.weightBytes : fallback.weightBytes,
    ...(verification ? { verification } : {}),
  };
}

/**
 * What a saved file's card says beyond what the metadata holds (training runs, evaluation, artefact record, the
 * backbone's weights hash), each part checked; a file without a card (format 1 before cards: 0.1.0 and early
 * 0.2.0) gets an artefact record with version `"unknown"` and what its weight specs and bytes say.
 * @internal
 */
export function readCard(
  meta: { card?: unknown; contents: 'full' | 'head'; writtenBy?: unknown },
  weights: ReadWeights,
): { trainingRuns: TrainingRun[]; evaluation?: EvaluationRecord; artefact: ArtefactRecord; weightsSha256?: string } {
  const card = isObj(meta.card) ? meta.card : {};
  const trainingRuns = Array.isArray(card.training) ? card.training.map(trainingRunOf).filter((r): r is TrainingRun => r !== undefined) : [];
  const evaluation = evaluationOf(card.evaluation);
  const artefact = artefactOf(card.artefact, meta.contents, meta.writtenBy, weights);
  const hash = isObj(card.backbone) && str(card.backbone.weightsSha256) && /^[0-9a-f]{64}$/.test(card.backbone.weightsSha256) ? card.backbone.weightsSha256 : undefined;
  return { trainingRuns, ...(evaluation ? { evaluation } : {}), artefact, ...(hash ? { weightsSha256: hash } : {}) };
}

/**
 * The model card of a saved artefact from its `model.json` metadata alone (no weights, no backbone): what
 * `tfjs-transfer info` prints. `undefined` when the file was not written by tfjs-transfer.
 * @internal
 */
export function cardFromMetadata(userDefinedMetadata: unknown, weights: ReadWeights): ModelCard | undefined {
  const meta = isObj(userDefinedMetadata) ? userDefinedMetadata.tfjsTransfer : undefined;
  if (!isObj(meta) || !Array.isArray(meta.classes) || !isObj(meta.backbone) || !isObj(meta.head)) return undefined;
  const contents = meta.contents === 'head' ? 'head' : 'full';
  const read = readCard({ card: meta.card, contents, writtenBy: meta.writtenBy }, weights);
  const b = meta.backbone;
  const head = meta.head;
  const card: ModelCard = {
    classes: meta.classes.map(String),
    inputShape: (Array.isArray(meta.inputShape) ? meta.inputShape.slice(0, 3).map(Number) : [0, 0, 3]) as [number, number, 3],
    preprocessing: JSON.parse(JSON.stringify(meta.preprocessing ?? {})) as ModelCard['preprocessing'],
    resizeFit: RESIZE_FITS.includes(meta.resizeFit as ResizeFit) ? (meta.resizeFit as ResizeFit) : 'squash',
    backbone: {
      name: String(b.name),
      source: String(b.source),
      kind: String(b.kind),
      featureShape: Array.isArray(b.featureShape) ? b.featureShape.map(Number) : [],
      ...(str(b.featureLayer) ? { featureLayer: b.featureLayer } : {}),
      ...(read.weightsSha256 ? { weightsSha256: read.weightsSha256 } : str(b.weightsSha256) ? { weightsSha256: b.weightsSha256 } : {}),
    },
    head: {
      pooling: head.pooling as ModelCard['head']['pooling'],
      dropout: Number(head.dropout),
      hiddenUnits: Array.isArray(head.hiddenUnits) ? head.hiddenUnits.map(Number) : [],
      hiddenActivation: String(head.hiddenActivation),
      outputActivation: head.outputActivation === 'sigmoid' ? 'sigmoid' : 'softmax',
    },
    training: read.trainingRuns,
    artefact: read.artefact,
  };
  if (read.evaluation) card.evaluation = read.evaluation;
  if (isObj(meta.calibration)) card.calibration = JSON.parse(JSON.stringify(meta.calibration)) as ModelCard['calibration'];
  const detector = detectorSummary(meta.unknown, card.classes.length);
  if (detector) card.unknownDetector = detector;
  return card;
}

/** The summary of a stored unknown detector, or `undefined` when there is none or it is malformed (a card never throws). */
function detectorSummary(record: unknown, classes: number): ModelCard['unknownDetector'] {
  try {
    return unknownDetectorFromRecord(record, classes, 'model card')?.summary();
  } catch {
    return undefined;
  }
}

/** The model card as text, for people (`tfjs-transfer info`). @internal */
export function formatCard(card: ModelCard): string {
  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  const a = card.artefact;
  const lines = [
    `classes:        ${card.classes.join(', ')} (${card.classes.length})`,
    `input:          ${card.inputShape.join('x')} raw RGB 0..255; preprocessing x * ${card.preprocessing.scale} + ${card.preprocessing.offset}; other shapes: ${card.resizeFit}`,
    `backbone:       ${card.backbone.name} (${card.backbone.kind}${card.backbone.featureLayer ? `, features at ${card.backbone.featureLayer}` : ''} [${card.backbone.featureShape.join(', ')}])`,
    `  source:       ${card.backbone.source}`,
    `  weights:      ${card.backbone.weightsSha256 ? `sha256 ${card.backbone.weightsSha256}` : 'hash not recorded'}`,
    `head:           ${card.head.pooling} pooling, dropout ${card.head.dropout}${card.head.hiddenUnits.length ? `, hidden ${card.head.hiddenUnits.join('-')} ${card.head.hiddenActivation}` : ''}, ${card.head.outputActivation}`,
  ];
  if (card.training.length === 0) lines.push('training:       not recorded');
  card.training.forEach((r, i) => {
    const counts = Object.entries(r.imagesPerClass).map(([c, n]) => `${c} ${n}`).join(', ');
    lines.push(
      `training ${i + 1}:     ${counts}; ${r.validationImages} validation; ${r.epochs} epochs (best ${r.bestEpoch + 1}${r.stoppedEarly ? ', stopped early' : ''})` +
        `${r.valAccuracy !== undefined ? `, val accuracy ${pct(r.valAccuracy)}` : ''}`,
      `  settings:     ${r.settings.optimizer}${r.settings.learningRate !== null ? ` lr ${r.settings.learningRate}` : ''}, batch ${r.settings.batchSize}, seed ${r.settings.seed}, ` +
        `${r.trainedParameters} parameters in ${r.trainedLayers.length} layers, finished ${r.finishedAt}`,
    );
  });
  const e = card.evaluation;
  if (e) {
    lines.push(`evaluation:     accuracy ${pct(e.accuracy)} on ${e.count} images, loss ${e.loss.toFixed(4)}, macro F1 ${e.macroF1.toFixed(4)}${e.rocAuc !== undefined ? `, ROC AUC ${e.rocAuc.toFixed(4)}` : ''}, ECE ${e.ece.toFixed(4)}`);
    for (const c of e.perClass) lines.push(`  ${c.name.padEnd(13)} precision ${c.precision.toFixed(3)}, recall ${c.recall.toFixed(3)}, F1 ${c.f1.toFixed(3)}, ${c.support} images`);
  } else lines.push('evaluation:     not recorded');
  const cal = card.calibration;
  lines.push(cal ? `calibration:    temperature ${cal.temperature.toFixed(3)} on ${cal.images} images, ECE ${cal.eceBefore.toFixed(4)} -> ${cal.eceAfter.toFixed(4)}` : 'calibration:    none');
  const u = card.unknownDetector;
  lines.push(
    u
      ? `unknown:        ${describeUnknownDetector(u)}, threshold ${u.threshold.toFixed(3)} accepting ${pct(u.targetAcceptance)} of ${u.heldOutImages} validation images, ${u.bytes} bytes`
      : 'unknown:        no detector',
  );
  if (a) {
    lines.push(
      `artefact:       ${a.backbone === 'reference' ? 'head only (backbone by reference)' : 'whole model'}, ${a.quantization} (${a.quantizedWeights} weights quantized, ${a.float32Weights} float32), ${a.weightBytes} bytes of weights`,
      `  written by:   ${a.library.name} ${a.library.version === 'unknown' ? '(version not recorded: written before model cards)' : a.library.version}${a.savedAt ? ` on ${a.savedAt}` : ''}`,
    );
    const v = a.verification;
    if (v) lines.push(`  verified:     accuracy ${pct(v.accuracyBefore)} -> ${pct(v.accuracyAfter)} on ${v.images} images (drop ${(100 * v.drop).toFixed(2)} points, bound ${(100 * v.maxAccuracyDrop).toFixed(2)})`);
    if (v?.unknownAcceptedBefore !== undefined && v.unknownAcceptedAfter !== undefined) lines.push(`  detector:     accepts ${pct(v.unknownAcceptedBefore)} -> ${pct(v.unknownAcceptedAfter)} of them`);
  }
  return lines.join('\n');
}
