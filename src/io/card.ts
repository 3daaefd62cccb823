/**
 * The model card inside every artefact: written by `save` (`userDefinedMetadata.tfjsTransfer.card`), read back by
 * `loadModel` with every field checked (a file may be edited or hostile: a malformed part is dropped, never
 * trusted), and derived from the metadata alone for files older than cards.
 * @module
 */
import { QUANTIZATIONS, type WeightQuantization } from '../artifacts/quantize';
import type { ArtefactRecord, EvaluationRecord, ModelCard, TrainingRun } from '../transfer-model';
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
  };
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

function artefactOf(x: unknown, contents: 'full' | 'head', writtenBy: unknown): ArtefactRecord {
  const fallback: ArtefactRecord = {
    library: { name: str(writtenBy) ? writtenBy : LIBRARY_NAME, version: 'unknown' },
    savedAt: undefined,
    backbone: contents === 'full' ? 'embedded' : 'reference',
    quantization: 'float32',
    quantizedWeights: 0,
    float32Weights: 0,
    weightBytes: 0,
  };
  if (!isObj(x)) return fallback;
  const library = isObj(x.library) && str(x.library.name) && str(x.library.version) ? { name: x.library.name, version: x.library.version } : fallback.library;
  const quantization = QUANTIZATIONS.includes(x.quantization as WeightQuantization) ? (x.quantization as WeightQuantization) : 'float32';
  const v = x.verification;
  const verification =
    isObj(v) && num(v.images) && num(v.accuracyBefore) && num(v.accuracyAfter) && num(v.drop) && num(v.maxAccuracyDrop)
      ? { images: v.images, accuracyBefore: v.accuracyBefore, accuracyAfter: v.accuracyAfter, drop: v.drop, maxAccuracyDrop: v.maxAccuracyDrop }
      : undefined;
  return {
    library,
    savedAt: str(x.savedAt) ? x.savedAt : undefined,
    backbone: x.backbone === 'reference' ? 'reference' : x.backbone === 'embedded' ? 'embedded' : fallback.backbone,
    quantization,
    quantizedWeights: num(x.quantizedWeights) ? x.quantizedWeights : 0,
    float32Weights: num(x.float32Weights) ? x.float32Weights : 0,
    weightBytes: num(x.weightBytes) ? x.weightBytes : 0,
    ...(verification ? { verification } : {}),
  };
}

/**
 * What a saved file's card says beyond what the metadata holds (training runs, evaluation, artefact record, the
 * backbone's weights hash), each part checked; a file without a card (format 1 before cards: 0.1.0 and early
 * 0.2.0) gets an artefact record with version `"unknown"`. `weightBytes` falls back to the bytes read.
 * @internal
 */
export function readCard(
  meta: { card?: unknown; contents: 'full' | 'head'; writtenBy?: unknown },
  weightBytes: number,
): { trainingRuns: TrainingRun[]; evaluation?: EvaluationRecord; artefact: ArtefactRecord; weightsSha256?: string } {
  const card = isObj(meta.card) ? meta.card : {};
  const trainingRuns = Array.isArray(card.training) ? card.training.map(trainingRunOf).filter((r): r is TrainingRun => r !== undefined) : [];
  const evaluation = evaluationOf(card.evaluation);
  const artefact = artefactOf(card.artefact, meta.contents, meta.writtenBy);
  if (artefact.weightBytes === 0) artefact.weightBytes = weightBytes;
  const hash = isObj(card.backbone) && str(card.backbone.weightsSha256) && /^[0-9a-f]{64}$/.test(card.backbone.weightsSha256) ? card.backbone.weightsSha256 : undefined;
  return { trainingRuns, ...(evaluation ? { evaluation } : {}), artefact, ...(hash ? { weightsSha256: hash } : {}) };
}
