/**
 * Step 5: `evaluate` (src/evaluate/evaluate.ts), its metrics (src/evaluate/metrics.ts), `calibrate`
 * (src/evaluate/calibration.ts), `predict` (src/evaluate/predict.ts) and the unknown detector's step-5 side
 * (src/evaluate/unknown.ts; the detector itself is src/unknown-detector.ts).
 * @module
 */
export { evaluate, EVALUATE_DEFAULTS, type EvaluateArgs } from './evaluate/evaluate';
export {
  metricsFromProbabilities,
  rocAuc,
  RELIABILITY_BINS,
  type ClassMetrics,
  type Evaluation,
  type Misclassified,
  type Reliability,
  type ReliabilityBin,
} from './evaluate/metrics';
export { calibrate, CALIBRATE_DEFAULTS, type CalibrateArgs } from './evaluate/calibration';
export type { Calibration } from './transfer-model';
export { predict, PREDICT_DEFAULTS, type PredictArgs, type PredictInput, type Prediction } from './evaluate/predict';
export {
  fitUnknownDetector,
  FIT_UNKNOWN_DETECTOR_DEFAULTS,
  type FitUnknownDetectorArgs,
  type UnknownEvaluation,
  type UnknownImages,
} from './evaluate/unknown';
export { UNKNOWN_DETECTOR_DEFAULTS, type UnknownCentring, type UnknownDetectorArgs, type UnknownDetectorSummary } from './unknown-detector';
