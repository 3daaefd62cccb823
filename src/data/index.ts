/**
 * The input pipeline (browser-safe): datasets from tensors, images and custom loaders; resizing; augmentation;
 * labels; splits.
 * @module
 */
export {
  createDataset,
  fromImages,
  fromTensors,
  type Dataset,
  type DatasetBatchArgs,
  type DatasetSource,
  type DecodedPixels,
  type FromImagesArgs,
  type FromTensorsArgs,
  type ImageInfo,
  type ImageInput,
  type LabelledImage,
  type LoadedImage,
  type LoadRequest,
  type SkippedImage,
} from './dataset';
export { resizeImages, type ResizeFit, type ResizeArgs } from './resize';
export { augmentImages, DEFAULT_AUGMENT_ARGS, type AugmentArgs } from './augment';
export { toClassIndices, type ClassIndices, type ToClassIndicesArgs } from './labels';
export { splitDataset, type DatasetSplit, type SplitArgs } from './split';
