/**
 * Losses and accuracy for the two head shapes: one sigmoid unit (two classes) or a softmax.
 * @internal
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';

const EPS = 1e-7;

/** Targets for `indices`: `[n, 1]` 0/1 for a sigmoid head, one-hot `[n, k]` for softmax. */
export function targetsFor(indices: Int32Array, numClasses: number): tf.Tensor2D {
  return tf.tidy(() => {
    if (numClasses === 2) return tf.tensor2d(Float32Array.from(indices), [indices.length, 1]);
    return tf.cast(tf.oneHot(tf.tensor1d(indices, 'int32'), numClasses), 'float32') as tf.Tensor2D;
  });
}

/** Per-sample cross-entropy `[n]` of probabilities `p` against `targets`. */
export function crossEntropy(p: tf.Tensor2D, targets: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    const q = tf.clipByValue(p, EPS, 1 - EPS);
    if (p.shape[1] === 1) {
      // Binary cross-entropy, as Keras' from probabilities.
      const l = tf.neg(tf.add(tf.mul(targets, tf.log(q)), tf.mul(tf.sub(1, targets), tf.log(tf.sub(1, q)))));
      return tf.reshape(l, [-1]) as tf.Tensor1D;
    }
    return tf.neg(tf.sum(tf.mul(targets, tf.log(q)), 1)) as tf.Tensor1D;
  });
}

/** Weighted mean loss (scalar). `weights` may be undefined (all 1). */
export function meanLoss(p: tf.Tensor2D, targets: tf.Tensor2D, weights?: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const per = crossEntropy(p, targets);
    if (!weights) return tf.mean(per) as tf.Scalar;
    return tf.div(tf.sum(tf.mul(per, weights)), tf.sum(weights)) as tf.Scalar;
  });
}

/** Number of correct predictions (scalar). */
export function correctCount(p: tf.Tensor2D, targets: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    if (p.shape[1] === 1) return tf.sum(tf.cast(tf.equal(tf.greaterEqual(p, 0.5), tf.greaterEqual(targets, 0.5)), 'float32')) as tf.Scalar;
    return tf.sum(tf.cast(tf.equal(tf.argMax(p, 1), tf.argMax(targets, 1)), 'float32')) as tf.Scalar;
  });
}
