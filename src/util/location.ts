/**
 * What a model location string is: a local path (or `file://` URL), or a URL with a scheme tfjs routes
 * (`https://`, `indexeddb://`, `localstorage://`, `downloads://`, ...).
 * @internal
 * @module
 */

const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

/** True for a path (`./m/model.json`, `/abs`, `C:\m`, `models/x`) or a `file://` URL. */
export function isLocalPath(location: string): boolean {
  return !SCHEME.test(location) || /^file:\/\//i.test(location);
}

/** True for `http://` and `https://` URLs. */
export function isHttpUrl(location: string): boolean {
  return /^https?:\/\//i.test(location);
}
