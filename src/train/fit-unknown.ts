/**
 * Stage 5 of {@link fit}: the unknown detector, fitted after training from the pooled features of the training
 * images (the method's numbers) and of the validation images (threshold), both already at hand as activations.
 * @internal
 * @module
 */
import { env } from '../env';
import type { TransferModel } from '../transfer-model';
import { chooseAndFitUnknownDetector, describeUnknownDetector } from '../unknown-detector';
import type { FreezeBoundary } from './boundary';
import { detectorVectorsFromActivations } from './detector-features';
import type { FitActivations } from './fit-activations';
import type { ResolvedFitArgs } from './fit-args';

/** Fits (or drops) `model`'s unknown detector; the numbers go to the log when verbose. @internal */
export async function fitUnknownAfterTraining(model: TransferModel, split: FreezeBoundary, acts: FitActivations, args: ResolvedFitArgs, seed: number): Promise<void> {
  model.setUnknownDetector(undefined);
  if (!args.unknown) return;
  if (!acts.validation || acts.validation.n === 0) {
    if (args.verbose) env.logger('tfjs-transfer: no unknown detector (it needs validation images: pass validationData or validationSplit)');
    return;
  }
  const t0 = Date.now();
  const train = await detectorVectorsFromActivations(model, split, acts.train);
  const held = await detectorVectorsFromActivations(model, split, acts.validation);
  const detector = chooseAndFitUnknownDetector(train, held, model.numClasses, args.unknown, seed, model.backbone.pretrainedClassifier, model.headSpec.pooling, 'fit');
  model.setUnknownDetector(detector);
  if (args.verbose) {
    const s = detector.summary();
    env.logger(
      `tfjs-transfer: unknown detector: ${describeUnknownDetector(s)}, threshold for ${s.targetAcceptance} of ` +
        `${s.heldOutImages} validation images, ${(s.bytes / 1024).toFixed(0)} KB, ${((Date.now() - t0) / 1000).toFixed(1)}s`,
    );
  }
}
