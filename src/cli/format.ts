/**
 * Text rendering of results for the CLI and the examples.
 * @module
 */
import type { Evaluation, Prediction } from '../evaluate';

function pad(text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

/**
 * An evaluation as text: accuracy and loss, per-class precision / recall / F1 / support, and the confusion matrix
 * (rows: actual class, columns: predicted class).
 *
 * @example
 * ```ts
 * console.log(formatEvaluation(await evaluate(model, validation), 'validation'));
 * ```
 */
export function formatEvaluation(e: Evaluation, title = 'evaluation'): string {
  const lines: string[] = [];
  const correct = Math.round(e.accuracy * e.count);
  lines.push(
    `${title}: accuracy ${e.accuracy.toFixed(4)} (${correct}/${e.count}), loss ${e.loss.toFixed(4)}` +
      `${e.rocAuc !== undefined ? `, ROC AUC ${e.rocAuc.toFixed(4)}` : ''}, macro F1 ${e.macroF1.toFixed(4)}`,
  );
  const nameWidth = Math.max(5, ...e.classes.map((c) => c.length));
  lines.push(`  ${pad('class', nameWidth)}  precision  recall      f1  support`);
  for (const m of e.perClass) {
    lines.push(
      `  ${pad(m.name, nameWidth)}  ${pad(m.precision.toFixed(4), 9, true)}  ${pad(m.recall.toFixed(4), 6, true)}  ${pad(m.f1.toFixed(4), 6, true)}  ${pad(String(m.support), 7, true)}`,
    );
  }
  const cell = Math.max(6, ...e.classes.map((c) => c.length), ...e.confusionMatrix.flat().map((v) => String(v).length));
  lines.push(`  confusion matrix (rows: actual, columns: predicted)`);
  lines.push(`  ${pad('', nameWidth)}  ${e.classes.map((c) => pad(c, cell, true)).join(' ')}`);
  e.confusionMatrix.forEach((row, i) => {
    lines.push(`  ${pad(e.classes[i]!, nameWidth)}  ${row.map((v) => pad(String(v), cell, true)).join(' ')}`);
  });
  const u = e.unknown;
  if (u) {
    const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
    lines.push(`  unknown detector: accepts ${pct(u.accepted)} of these images${u.acceptedAccuracy !== undefined ? ` (accuracy on those ${u.acceptedAccuracy.toFixed(4)})` : ''}`);
    if (u.otherImages > 0) {
      lines.push(`  unknown images: ${u.otherImages}, refused ${pct(u.otherRejected!)}, accepted ${pct(u.otherAccepted!)}${u.rocAuc !== undefined ? `, ROC AUC ${u.rocAuc.toFixed(4)}` : ''}`);
    }
  }
  return lines.join('\n');
}

/**
 * One prediction as a line: `file  label  probability`; for an image the unknown detector refuses,
 * `file  unknown  probability  closest: label` (the probability is the closest class's).
 */
export function formatPrediction(file: string, p: Prediction): string {
  if (p.unknown) return `${file}\tunknown\t${p.probability.toFixed(4)}\tclosest: ${p.label}`;
  return `${file}\t${p.label}\t${p.probability.toFixed(4)}`;
}
