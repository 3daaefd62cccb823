/**
 * Built-in callback: checkpoints (Keras' `BackupAndRestore`). At train begin it restores a found checkpoint of the
 * same run (weights, optimizer state, RNG state, history, best-epoch state); after every `every` epochs (and the
 * last one, and an early stop) it writes the whole state, so a resumed run ends bit-identical to an uninterrupted
 * one. The file format lives in `../checkpoint.ts`.
 * @internal
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { log } from '../../env';
import { TransferError } from '../../errors';
import type { FitCallback } from '../callbacks';
import { captureOptimizer, restoreOptimizer, storeTensor, toTensor, writeCheckpoint, type CheckpointSession, type RunFingerprint } from '../checkpoint';
import { disposeSnapshot, snapshot, type FitState } from '../fit-state';

/** @internal */
export function checkpointCallback(state: FitState, session: CheckpointSession, fingerprint: RunFingerprint, say: (message: string) => void): FitCallback {
  return {
    async onTrainBegin() {
      if (session.found) await resume(state, session, say);
    },
    async onEpochEnd(epoch) {
      const done = epoch + 1;
      if (done % session.every === 0 || done === state.args.epochs || state.history.stoppedEarly) await write(state, session, fingerprint, done);
    },
  };
}

async function resume(state: FitState, session: CheckpointSession, say: (message: string) => void): Promise<void> {
  const found = session.found!;
  const { vars, history } = state;
  const saved = found.weights;
  if (saved.length !== vars.length || saved.some((w, i) => JSON.stringify(w.shape) !== JSON.stringify(vars[i]!.shape))) {
    throw new TransferError('INVALID_ARGUMENT', `fit: the checkpoint at ${session.store.location} holds weights of other shapes than this model's trainable weights; use another checkpoint directory or checkpoint.resume: false.`);
  }
  saved.forEach((w, i) => {
    const t = toTensor(w);
    vars[i]!.assign(t);
    t.dispose();
  });
  await restoreOptimizer(state.optimizer, found.optimizer, found.optimizerExtra);
  state.rng.setState(found.state.rngState);
  const h = found.state.history;
  history.loss = [...h.loss];
  history.accuracy = [...h.accuracy];
  history.valLoss = [...h.valLoss];
  history.valAccuracy = [...h.valAccuracy];
  history.bestEpoch = h.bestEpoch;
  history.stoppedEarly = found.state.stoppedEarly;
  history.warnings = [...(h.warnings ?? [])];
  if (h.initial) history.initial = { ...h.initial };
  history.epochs = found.state.epoch;
  history.resumedEpochs = found.state.epoch;
  state.best = found.state.best ?? undefined;
  state.sinceBest = found.state.sinceBest;
  if (state.args.earlyStopping?.restoreBestWeights && found.best) state.bestWeights = { values: found.best.map(toTensor) };
  state.startEpoch = found.state.epoch;
  state.batchCounter = found.state.batchCounter;
  if (history.stoppedEarly) state.model.stopTraining = true;
  disposeSnapshot(state.startWeights);
  state.startWeights = snapshot(vars);
  if (found.state.backend !== tf.getBackend()) {
    log(`tfjs-transfer: the checkpoint was written on the ${found.state.backend} backend and resumes on ${tf.getBackend()}; results will differ slightly from an uninterrupted run.`);
  }
  const complete = history.stoppedEarly || state.startEpoch === state.args.epochs;
  say(`tfjs-transfer: resumed from ${session.store.location} after epoch ${state.startEpoch}${complete ? ' (training was already complete)' : ''}.`);
}

async function write(state: FitState, session: CheckpointSession, fingerprint: RunFingerprint, epoch: number): Promise<void> {
  const { history } = state;
  const opt = await captureOptimizer(state.optimizer);
  const names = state.split.top.trainableWeights.map((w) => (w as unknown as { originalName: string }).originalName);
  const bestWeights = state.args.earlyStopping?.restoreBestWeights ? state.bestWeights : undefined;
  await writeCheckpoint(
    session,
    {
      state: {
        epoch,
        batchCounter: state.batchCounter,
        seed: state.seed,
        rngState: state.rng.getState(),
        best: state.best,
        sinceBest: state.sinceBest,
        stoppedEarly: history.stoppedEarly,
        history: {
          loss: history.loss,
          accuracy: history.accuracy,
          valLoss: history.valLoss,
          valAccuracy: history.valAccuracy,
          bestEpoch: history.bestEpoch,
          initial: history.initial,
          trainMs: Date.now() - state.t0 - state.extractMs,
          warnings: history.warnings,
        },
        backend: tf.getBackend(),
      },
      fingerprint,
      weights: await Promise.all(state.vars.map((v, i) => storeTensor(names[i] ?? `weight_${i}`, v))),
      optimizer: opt.weights,
      optimizerExtra: opt.extra,
      best: bestWeights ? await Promise.all(bestWeights.values.map((t, i) => storeTensor(`best/${names[i] ?? i}`, t))) : undefined,
    },
    'fit',
  );
}
