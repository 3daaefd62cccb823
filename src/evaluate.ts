/**
 * Step 5: `evaluate` (src/evaluate/evaluate.ts), its metrics (src/evaluate/metrics.ts) and `predict`
 * (src/evaluate/predict.ts).
 * @module
 */
export { evaluate, EVALUATE_DEFAULTS, type EvaluateArgs } from './evaluate/evaluate';
export { metricsFromProbabilities, rocAuc, type ClassMetrics, type Evaluation, type Misclassified } from './evaluate/metrics';
export { predict, PREDICT_DEFAULTS, type PredictArgs, type PredictInput, type Prediction } from './evaluate/predict';
