// The RRL-MedSAM networks: config and presets, encoder, decoders,
// projection head and the composed model.

export {
  RRL_PRESETS,
  SAM_VIT_B_PARAMETERS,
  encoderParameterCount,
  rrlConfig,
} from './config.js';
export type {
  NormKind,
  RrlConfigOptions,
  RrlModelConfig,
  RrlPreset,
  RrlPresetName,
} from './config.js';
export { ConvBlock, Norm3d } from './layers.js';
export { BOTTLENECK_FACTOR, Encoder3d } from './encoder.js';
export type { FeaturePyramid } from './encoder.js';
export { RegistrationDecoder, UpPath } from './registration-decoder.js';
export { SegmentationDecoder } from './segmentation-decoder.js';
export { AutoPromptDecoder } from './auto-prompt.js';
export { ProjectionHead } from './projection.js';
export { RrlMedSam, detach } from './model.js';
export type { GeneralOutput, RegistrationOutput, RrlOutput } from './model.js';
export { modelSummary } from './summary.js';
export type { ModelSummary, SummaryRow } from './summary.js';
