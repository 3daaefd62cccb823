/**
 * `tfjs-transfer/onnx`: export a trained model as an ONNX file (`exportOnnx`). A separate entry so that the main
 * entry never loads the protobuf library (`protobufjs`) it needs. Browser-safe; to write to a path in Node, import
 * `tfjs-transfer/node` too (it installs the file access `exportOnnx` uses).
 *
 * @example
 * ```ts
 * import { loadModel } from 'tfjs-transfer/node';
 * import { exportOnnx } from 'tfjs-transfer/onnx';
 * await exportOnnx(await loadModel('./my-model'), './my-model.onnx');
 * ```
 * @packageDocumentation
 */
export { exportOnnx, EXPORT_ONNX_DEFAULTS, type ExportOnnxArgs } from './export';
