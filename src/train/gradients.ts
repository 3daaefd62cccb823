/**
 * Gradients of a scalar loss with respect to variables, like `tf.variableGrads`, with a backward pass that frees
 * what it no longer needs.
 *
 * tfjs-core 4.22's `engine.gradients` keeps, until the whole backward pass ends, every tensor the forward pass saved
 * for it and the gradient of every intermediate tensor: for the top of MobileNetV2 from `block_11_expand` a pass of
 * 8 rows peaks at 211 MB of live wasm memory, against 113 MB here (docs/performance.md). Walking the same tape, each
 * node's saved tensors are released as soon as its gradient is computed, and the gradient of each intermediate
 * tensor as soon as the node that produced it has passed it on, so the backward pass holds the activations still to
 * be used and the few gradients in flight. The arithmetic is the engine's own: the same tape, the same gradient
 * functions in the same order, the same accumulation, so the results are identical to `tf.variableGrads`.
 *
 * It reads the engine's tape (`startTape`, `endTape`, `state.activeTape`), which tfjs-core does not document; when
 * that is not there in the shape this code knows, or a gradient is already being recorded (a gradient of a
 * gradient), it is `tf.variableGrads` itself.
 * @internal
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';

/** A node of the engine's tape (tfjs-core's `TapeNode`). */
interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
  saved?: tf.Tensor[];
}

/** The parts of tfjs-core's engine that recording a tape uses. */
interface TapeEngine {
  startTape(): void;
  endTape(): void;
  tidy<T extends tf.TensorContainer>(nameOrFn: string | (() => T), fn?: () => T): T;
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
}

function tapeEngine(): TapeEngine | undefined {
  const e = tf.engine() as unknown as Partial<TapeEngine>;
  const ok = typeof e.startTape === 'function' && typeof e.endTape === 'function' && typeof e.tidy === 'function'
    && e.state != null && typeof e.state.gradientDepth === 'number';
  return ok ? (e as TapeEngine) : undefined;
}

/** The nodes on a path from one of `xs` to `y`, their inputs pruned to those that depend on `xs` (the engine's rule). */
function nodesFromXsToY(tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set(xs.map((x) => x.id));
  const nodeFromX = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((t) => fromX.has(t.id))) {
      nodeFromX.add(node.id);
      for (const o of node.outputs) fromX.add(o.id);
    }
  }
  const toY = new Set([y.id]);
  const nodeToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i]!;
    if (node.outputs.some((o) => toY.has(o.id))) {
      nodeToY.add(node.id);
      for (const t of Object.values(node.inputs)) toY.add(t.id);
    }
  }
  const out: TapeNode[] = [];
  for (const node of tape) {
    if (!nodeFromX.has(node.id) || !nodeToY.has(node.id)) continue;
    const inputs: Record<string, tf.Tensor> = {};
    for (const [name, t] of Object.entries(node.inputs)) if (fromX.has(t.id)) inputs[name] = t;
    out.push({ ...node, inputs });
  }
  return out;
}

/**
 * `tf.variableGrads(f, vars)` with a backward pass that releases each saved activation and each intermediate
 * gradient once it is used (see the module's notes). Returns the loss and the gradient of every variable `f`
 * depends on, by variable name; to be called inside a `tf.tidy` or its results disposed.
 * @internal
 */
export function variableGradsFreeingEarly(f: () => tf.Scalar, vars: tf.Variable[]): { value: tf.Scalar; grads: tf.NamedTensorMap } {
  const engine = tapeEngine();
  if (!engine || engine.state.gradientDepth !== 0 || engine.state.activeTape != null) return tf.variableGrads(f, vars);
  const xs = vars.filter((v) => v.trainable);
  if (xs.length === 0) throw new Error('variableGradsFreeingEarly: none of the variables is trainable.');
  const recorded = (): TapeNode[] => (engine.state as { activeTape: TapeNode[] | null }).activeTape ?? [];
  let y: tf.Tensor;
  engine.startTape();
  try {
    y = engine.tidy('forward', f);
  } catch (e) {
    for (const node of recorded()) tf.dispose(node.saved ?? []);
    engine.state.activeTape = null;
    throw e;
  } finally {
    engine.endTape();
  }
  const tape = recorded();
  let grads: (tf.Tensor | undefined)[] = [];
  try {
    if (!(y instanceof tf.Tensor) || y.rank !== 0) throw new Error('variableGradsFreeingEarly: f() must return a scalar tensor.');
    const nodes = nodesFromXsToY(tape, xs, y);
    grads = engine.tidy('backward', () => backward(engine, nodes, y, new Set(xs.map((x) => x.id))));
    const named: tf.NamedTensorMap = {};
    xs.forEach((x, i) => {
      const g = grads[i];
      if (g != null) named[x.name] = g;
    });
    if (Object.keys(named).length === 0) throw new Error('variableGradsFreeingEarly: the loss depends on none of the variables.');
    return { value: y as tf.Scalar, grads: named };
  } catch (e) {
    tf.dispose([y, ...grads.filter((g): g is tf.Tensor => g != null)]);
    throw e;
  } finally {
    for (const node of tape) tf.dispose(node.saved ?? []);
    engine.state.activeTape = null;
  }
}

/** Walks `nodes` backwards from `y`; returns the gradients of `xs` (by the ids in `keep`), in their order. */
function backward(engine: TapeEngine, nodes: TapeNode[], y: tf.Tensor, keep: Set<number>): (tf.Tensor | undefined)[] {
  const acc = new Map<number, tf.Tensor>([[y.id, tf.onesLike(y)]]);
  // A gradient function may hand back the tensor it was given, so a tensor is freed only once no entry holds it.
  const release = (t: tf.Tensor): void => {
    for (const held of acc.values()) if (held === t) return;
    t.dispose();
  };
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i]!;
    if (!node.gradient) throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`);
    const inputGradients = node.gradient(node.outputs.map((o) => acc.get(o.id) ?? null));
    for (const [name, x] of Object.entries(node.inputs)) {
      const fn = inputGradients[name];
      if (!fn) throw new Error(`Cannot backprop through input ${name} of ${node.kernelName}. Available gradients: ${Object.keys(inputGradients).join(', ')}.`);
      const dx = engine.tidy(fn);
      if (dx.dtype !== 'float32') throw new Error(`Error in gradient for ${node.kernelName}: the gradient of input ${name} must be float32, not ${dx.dtype}.`);
      if (!tf.util.arraysEqual(dx.shape, x.shape)) throw new Error(`Error in gradient for ${node.kernelName}: the gradient of input '${name}' has shape [${dx.shape}], the input [${x.shape}].`);
      const current = acc.get(x.id);
      if (current == null) acc.set(x.id, dx);
      else {
        acc.set(x.id, tf.add(current, dx));
        release(current);
        release(dx);
      }
    }
    // This node's saved activations and its outputs' gradients are used by nobody else from here on.
    for (const t of node.saved ?? []) release(t);
    for (const o of node.outputs) {
      const dy = acc.get(o.id);
      if (dy == null || keep.has(o.id)) continue;
      acc.delete(o.id);
      release(dy);
    }
  }
  return [...keep].map((id) => acc.get(id));
}
