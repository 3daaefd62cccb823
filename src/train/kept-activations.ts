/**
 * The hand-off from {@link fit} to {@link evaluate}: the validation data's frozen-prefix activations, kept only when
 * asked (`keepValidationActivations: true`), returned in the history, and checked before reuse.
 * @module
 */
import { TransferError } from '../errors';
import type { TransferModel } from '../transfer-model';
import type { LabelledData } from '../types';
import type { Activations } from './activations';
import { freezeBoundaryOf, freezeSignature } from './boundary';
import { extractorIdentity } from './identity';

/**
 * The frozen-prefix activations of one data set for one model, as `fit` computed them (see
 * `FitArgs.keepValidationActivations`). Opaque: pass it to `evaluate(model, data, { activations })`, which checks
 * that it belongs to that model and data and that the frozen layers have not changed since. The values live in
 * JavaScript memory (not on the backend); `dispose()` drops them early.
 *
 * @category Step 5: Evaluate
 * @example
 * ```ts
 * const history = await fit(model, train, { validationData: val, keepValidationActivations: true });
 * const result = await evaluate(model, val, { activations: history.validationActivations });
 * history.validationActivations?.dispose();
 * ```
 */
export class KeptActivations {
  private acts: Activations | undefined;
  private readonly model: TransferModel;
  private readonly data: LabelledData;
  private readonly signature: string;
  private readonly identity: string;

  /** @internal Made by `fit`. */
  constructor(model: TransferModel, data: LabelledData, acts: Activations, identity: string) {
    this.model = model;
    this.data = data;
    this.acts = acts;
    this.signature = freezeSignature(model);
    this.identity = identity;
  }

  /** Whether {@link KeptActivations.dispose} was called. */
  get isDisposed(): boolean {
    return this.acts === undefined;
  }

  /** Number of images held (0 once disposed). */
  get count(): number {
    return this.acts?.n ?? 0;
  }

  /** Drops the activations. Safe to call twice. */
  dispose(): void {
    this.acts = undefined;
  }

  /**
   * The activations, if they are still those `model` would compute for `data`; throws `INVALID_ARGUMENT` naming the
   * reason otherwise. @internal
   */
  async activationsFor(model: TransferModel, data: LabelledData, where: string): Promise<Activations> {
    const bad = (why: string): never => {
      throw new TransferError('INVALID_ARGUMENT', `${where}: the activations given ${why}; leave out the activations option to extract them again.`);
    };
    if (!this.acts) bad('were disposed');
    if (model !== this.model) bad('belong to another model');
    if (data !== this.data) bad('were computed for other data (pass the same validationData object that fit had)');
    if (freezeSignature(model) !== this.signature) bad('were computed before freeze() moved the freeze boundary');
    if ((await extractorIdentity(freezeBoundaryOf(model), model)) !== this.identity) bad('were computed with other frozen weights');
    return this.acts!;
  }
}
