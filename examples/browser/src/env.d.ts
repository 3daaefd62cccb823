/// <reference types="vite/client" />

/** Whether models come from the page's own /models/ (development and tests) or the official URLs. */
declare const __LOCAL_MODELS__: boolean;

declare module 'virtual:webgpu-backend' {
  /** Imports @tensorflow/tfjs-backend-webgpu when it is installed; `undefined` otherwise. */
  const load: (() => Promise<unknown>) | undefined;
  export default load;
}
