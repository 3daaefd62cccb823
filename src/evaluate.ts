/**
 * Step 5: `evaluate` (src/evaluate/evaluate.ts), its metrics (src/evaluate/metrics.ts), `calibrate`
 * (src/evaluate/calibration.ts), `predict` (src/evaluate/predict.ts), `explain` (src/evaluate/explain.ts) and its
 * heatmap helpers (src/evaluate/heatmap.ts), and the unknown detector's step-5 side (src/evaluate/unknown.ts; the
 * detector itself is src/unknown-detector.ts).
 * @module
 */
export { evaluate, EVALUATE_DEFAULTS, type EvaluateArgs, type EvaluateExplainArgs } from './evaluate/evaluate';
export {
  metricsFromProbabilities,
  rocAuc,
  RELIABILITY_BINS,
  type ClassMetrics,
  type Evaluation,
  type Misclassified,
  type TopLoss,
  type ConfusedPair,
  type BoundaryImage,
  type ClassBoundary,
  type Reliability,
  type ReliabilityBin,
} from './evaluate/metrics';
export { calibrate, CALIBRATE_DEFAULTS, type CalibrateArgs } from './evaluate/calibration';
export type { Calibration } from './transfer-model';
export { predict, PREDICT_DEFAULTS, type PredictArgs, type PredictInput, type Prediction, type TestTimeAugmentation } from './evaluate/predict';
export {
  fitUnknownDetector,
  FIT_UNKNOWN_DETECTOR_DEFAULTS,
  type FitUnknownDetectorArgs,
  type UnknownEvaluation,
  type UnknownImages,
  UNKNOWN_HISTOGRAM_BINS,
  type UnknownScoreHistogram,
} from './evaluate/unknown';
export {
  UNKNOWN_DETECTOR_DEFAULTS,
  type PretrainedClassesDetectorSummary,
  type PrototypeDetectorSummary,
  type UnknownCentring,
  type UnknownDetectorArgs,
  type UnknownDetectorSummary,
  type UnknownDetectorSummaryBase,
  type UnknownMethod,
} from './unknown-detector';
export { explain, EXPLAIN_DEFAULTS, type ExplainArgs, type ExplainMethod, type Explanation } from './evaluate/explain';
export {
  drawHeatmap,
  overlayHeatmap,
  upsampleHeatmap,
  OVERLAY_DEFAULTS,
  type CanvasLike,
  type Heatmap,
  type HeatmapData,
  type OverlayArgs,
} from './evaluate/heatmap';
