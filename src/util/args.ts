/**
 * Options resolved against one frozen defaults object, the tfjs-layers way: an option that is `undefined` or `null`
 * means "the default", so `{ epochs: undefined }` and `{}` are the same call.
 * @internal
 * @module
 */

/** `A` with every key of `D` present and never `undefined` / `null`. @internal */
export type Resolved<A, D> = Omit<A, keyof D> & { [K in keyof D]-?: Exclude<K extends keyof A ? A[K] : never, undefined | null> | D[K] };

/**
 * `defaults` overridden by the options of `args` that are neither `undefined` nor `null`. Returns a new object;
 * neither argument is changed. @internal
 *
 * @example
 * ```ts
 * withDefaults({ epochs: undefined, seed: 1 }, FIT_DEFAULTS).epochs; // 10
 * ```
 */
export function withDefaults<A extends object, D extends object>(args: A | undefined | null, defaults: D): Resolved<A, D> {
  const out: Record<string, unknown> = { ...(defaults as Record<string, unknown>) };
  if (args != null) {
    for (const [key, value] of Object.entries(args)) if (value !== undefined && value !== null) out[key] = value;
  }
  return out as Resolved<A, D>;
}
