/**
 * The library's version, written into every saved model card and printed by `tfjs-transfer --version`
 * (`test/unit/version.test.ts` keeps it equal to package.json's).
 * @internal
 * @module
 */

/** The version of tfjs-transfer. @internal */
export const VERSION = '0.2.0';
