// Node entry point of rrl-medsam: the public API plus helpers that need the
// file system. Browser code imports src/index.ts instead.

export * from './index.js';
export { readNiftiFile, writeNiftiFile } from './pipeline/nifti-file.js';
export { loadManifest, fileLoader } from './pipeline/manifest-file.js';
export type { LoadedManifest, LoadManifestOptions } from './pipeline/manifest-file.js';
export { writePngFile } from './pipeline/preview-file.js';
export { DiskFeatureCache } from './pipeline/teacher-cache.js';
