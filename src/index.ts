/**
 * tfjs-transfer: transfer learning on TensorFlow.js, in five composable steps, on any tfjs backend.
 *
 * This is the browser-safe entry: it never imports a Node built-in, and never imports, registers or selects a
 * backend (the application does). In Node, import from `tfjs-transfer/node`, which re-exports all of this and
 * adds file access (`imageFolder`, paths for models).
 *
 * 1. {@link examine} the data; 2. build the pipeline ({@link fromTensors}, {@link fromImages}, `imageFolder`);
 * 3. {@link loadBackbone} + {@link freeze} + {@link attachHead}; 4. {@link fit}; 5. {@link evaluate}.
 * Or {@link transferLearn} for all five.
 * @packageDocumentation
 */
export { env, type Environment } from './env';
export type {
  ActivationSpill,
  CheckpointStore,
  FileSystemAdapter,
  GradientBatch,
  ParallelExtractor,
  ParallelRun,
  ParallelTrainer,
  ParallelTraining,
  PortableProgram,
  PortableTop,
  SpillFile,
  TrainingJob,
} from './services';
export { TransferError, type TransferErrorCode } from './errors';
export type {
  BatchOptions,
  DrawableImage,
  IDBFactoryLike,
  ImageBatch,
  ImageDataLike,
  ImageDataset,
  ImageSize,
  LabelledData,
  Labels,
  Preprocessing,
  Progress,
  ProgressCallback,
  ProgressStage,
  TensorData,
} from './types';

// Step 1: examine (the step's public surface is its index).
export * from './examine/index';

// Step 2: the input pipeline (the step's public surface is its index).
export * from './data/index';

// Step 3: compose.
export { Backbone, EXTRACT_DEFAULTS, type BackboneFunction, type BackboneKind, type ExtractArgs } from './backbone/backbone';
export { loadBackbone, type BackboneSource, type LoadBackboneArgs } from './backbone/load';
export { listCatalog, MOBILENET_V2_PREPROCESSING, type CatalogEntry } from './backbone/catalog';
export { NO_PREPROCESSING } from './backbone/preprocess';
export { freeze, type FreezeArgs } from './freeze';
export { attachHead, type AttachHeadArgs } from './head';
export { TransferModel, type HeadSpec, type TrainingRun, type EvaluationRecord, type ModelCard, type ArtefactRecord, type QuantizationCheck } from './transfer-model';

// Step 4: train.
export {
  fit,
  FIT_DEFAULTS,
  EARLY_STOPPING_DEFAULTS,
  KeptActivations,
  type BatchBeginLogs,
  type BatchLogs,
  type EarlyStoppingArgs,
  type EpochLogs,
  type FitArgs,
  type FitCallback,
  type FitHistory,
  type YieldEvery,
} from './train/fit';
export { memoryCheckpointStore, type CheckpointArgs, type CheckpointInfo } from './train/checkpoint';
export { registerWasmTrainingKernels } from './train/wasm-kernels';
export type { ActivationStorage } from './train/storage-policy';

// Caches of frozen-backbone activations.
export type { ActivationStore } from './train/activations';
export { createMemoryCache, type MemoryCache, type MemoryCacheArgs, type ActivationCacheStats } from './train/memory-cache';
export { createIndexedDBCache, type IndexedDBCache, type IndexedDBCacheArgs } from './train/indexeddb-cache';

// Step 5: evaluate, and use.
export {
  evaluate,
  EVALUATE_DEFAULTS,
  predict,
  PREDICT_DEFAULTS,
  type ClassMetrics,
  type EvaluateArgs,
  type EvaluateExplainArgs,
  type PredictArgs,
  type TestTimeAugmentation,
  type Evaluation,
  type Misclassified,
  type TopLoss,
  type ConfusedPair,
  type BoundaryImage,
  type ClassBoundary,
  type Prediction,
  type PredictInput,
  explain,
  EXPLAIN_DEFAULTS,
  type ExplainArgs,
  type ExplainMethod,
  type Explanation,
  drawHeatmap,
  overlayHeatmap,
  upsampleHeatmap,
  OVERLAY_DEFAULTS,
  type CanvasLike,
  type Heatmap,
  type HeatmapData,
  type OverlayArgs,
  calibrate,
  CALIBRATE_DEFAULTS,
  RELIABILITY_BINS,
  type CalibrateArgs,
  type Calibration,
  type Reliability,
  type ReliabilityBin,
  fitUnknownDetector,
  FIT_UNKNOWN_DETECTOR_DEFAULTS,
  UNKNOWN_DETECTOR_DEFAULTS,
  type FitUnknownDetectorArgs,
  type UnknownCentring,
  type UnknownDetectorArgs,
  type UnknownDetectorSummary,
  type UnknownDetectorSummaryBase,
  type PretrainedClassesDetectorSummary,
  type PrototypeDetectorSummary,
  type UnknownMethod,
  type UnknownEvaluation,
  type UnknownImages,
  UNKNOWN_HISTOGRAM_BINS,
  type UnknownScoreHistogram,
} from './evaluate';

// Save and load.
export {
  save,
  SAVE_DEFAULTS,
  loadModel,
  type LoadModelArgs,
  type SaveArgs,
  type SaveReport,
  type ModelSource,
  type SaveDestination,
  type TransferMetadata,
} from './io/model-io';
export type { WeightQuantization } from './artifacts/quantize';

// Off the main thread: the Web Worker helper (the page end and the worker end).
export {
  createTransferWorker,
  TransferWorker,
  RemoteModel,
  type CreateTransferWorkerArgs,
  type TransferWorkerInfo,
  type WorkerExplanation,
  type WorkerFitResult,
  type WorkerHeatmap,
  type WorkerSaveResult,
  type WorkerTransferLearnResult,
} from './worker/client';
export { serveTransferWorker, type ServeTransferWorkerArgs, type TransferWorkerServer } from './worker/serve';
export type {
  TransferWorkerPort,
  WorkerEvaluateOptions,
  WorkerFitArgs,
  WorkerFitOptions,
  WorkerImage,
  WorkerImages,
  WorkerLabelledImage,
  WorkerTrainListeners,
  WorkerTransferLearnArgs,
  WorkerTransferLearnOptions,
} from './worker/protocol';

// All five steps.
export {
  transferLearn,
  TRANSFER_LEARN_DEFAULTS,
  FINE_TUNE_DEFAULTS,
  type FineTuneArgs,
  type TransferLearnArgs,
  type TransferLearnResult,
} from './transfer-learn';

// The report: Vega-Lite specs of its charts, and the HTML page (charts given as SVG; tfjs-transfer/node renders them).
export {
  trainingCurvesSpec,
  historyFromRun,
  confusionMatrixSpec,
  reliabilitySpec,
  unknownHistogramSpec,
  type VegaLiteSpec,
  type ChartSizeArgs,
  type TrainingCurvesSpecArgs,
  type TrainingCurves,
  type ConfusionMatrixSpecArgs,
  type ReliabilitySpecArgs,
  type UnknownHistogramSpecArgs,
} from './report/specs';
export { renderReport, type RenderReportArgs, type ReportCharts, type ReportImage } from './report/html';
