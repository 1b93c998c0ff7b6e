// Public API of rrl-medsam.

export { ready, flush, sync, deviceInfo, GpuError, NoAdapterError } from './device.js';
export type { DeviceInfo } from './device.js';
export { setLogLevel } from './log.js';
export type { LogLevel } from './log.js';
export {
  Tensor,
  tensor,
  tidy,
  keep,
  liveTensorCount,
  shapeSize,
} from './tensor.js';
export type { TensorOptions } from './tensor.js';
export { memoryStats, trimPools } from './pool.js';
export { zeros, ones, full, randn, rand } from './ops/creation.js';
export {
  add,
  sub,
  mul,
  div,
  pow,
  maximum,
  minimum,
  neg,
  abs,
  exp,
  log,
  sqrt,
  scale,
  clamp,
  relu,
  leakyRelu,
  gelu,
  sigmoid,
  tanh,
  eq,
  ne,
  lt,
  le,
  gt,
  ge,
  where,
} from './ops/elementwise.js';
export type { Operand } from './ops/elementwise.js';
// Adds Tensor methods such as x.add(y) and x.sum(); imported for its side effects.
import './ops/methods.js';
export { setDebugChecks, debugChecks, checkOutput, NonFiniteError } from './debug.js';
export type { DebugChecks } from './debug.js';
export { sum, mean, max, min, argmax, argmin } from './ops/reduce.js';
export type { ReduceOptions } from './ops/reduce.js';
export { reshape, squeeze, unsqueeze } from './ops/view.js';
export {
  permute,
  transpose,
  slice,
  narrow,
  pad,
  broadcastTo,
  concat,
} from './ops/layout.js';
export { indexSelect } from './ops/index-select.js';
export { softmax, logSoftmax } from './ops/softmax.js';
export { noGrad, isGradEnabled } from './autograd/node.js';
export { backward } from './autograd/backward.js';
export { gradCheck } from './autograd/gradcheck.js';
export type { GradCheckInput, GradCheckOptions, GradCheckResult } from './autograd/gradcheck.js';
export { Random } from './random.js';
export { foldGrid, kernelOptions } from './kernels/launch.js';
export * as nn from './nn/index.js';
export { Optimizer, SGD, Adam, AdamW, emaUpdate } from './optim/index.js';
export type { OptimizerStateDict, OptionValue, SgdOptions, AdamOptions } from './optim/index.js';
export { conv3d, convTranspose3d } from './ops/conv.js';
export type { Conv3dOptions, ConvTranspose3dOptions, Size3 } from './ops/conv.js';
export { instanceNorm, groupNorm, layerNorm, layerNormChannels } from './ops/norm.js';
export type { NormOptions, NormalizedShape } from './ops/norm.js';
export { batchStats, batchNorm } from './ops/batch-norm.js';
export type { BatchNormOptions } from './ops/batch-norm.js';
export { normOptions } from './kernels/norm.js';
export { maxPool3d, avgPool3d } from './ops/pool.js';
export type { Pool3dOptions, AvgPool3dOptions } from './ops/pool.js';
export { upsample3d } from './ops/upsample.js';
export type { Upsample3dOptions, UpsampleMode } from './ops/upsample.js';
export { nccLoss, smoothnessLoss, diceLoss, oneHot, diceScore } from './ops/losses.js';
export type {
  NccOptions,
  DiceLossOptions,
  DiceScores,
  LabelArray,
  LabelVolume,
} from './ops/losses.js';
export { smoothnessOptions } from './kernels/smoothness.js';
export { warp, composeFlows, integrateVelocity } from './ops/warp.js';
export type { WarpMode, WarpOptions } from './ops/warp.js';
export { matmul } from './ops/matmul.js';
export type { MatmulOptions } from './ops/matmul.js';
export { matmulOptions, matmulTuningSettled, tunedVariants } from './kernels/tuning.js';
export { readNifti, writeNifti, NiftiError } from './pipeline/nifti.js';
export type { ReadNiftiOptions, WriteNiftiOptions } from './pipeline/nifti.js';
export { createVolume, voxelCount, spacingFromAffine, axisCodes } from './pipeline/volume.js';
export type { Volume, NiftiDatatype } from './pipeline/volume.js';
export { flowToDisplacementField, displacementFieldToFlow } from './pipeline/displacement.js';
export type { FlowVox, GridLike } from './pipeline/displacement.js';
export { CheckpointError } from './io/checkpoint-error.js';
export { toFloat32 } from './io/host-tensor.js';
export type { HostDtype, HostTensor, HostTensorData } from './io/host-tensor.js';
export {
  readSafetensors,
  readSafetensorsWithMetadata,
  writeSafetensors,
  SAFETENSORS_MAX_HEADER_BYTES,
} from './io/safetensors.js';
export type { SafetensorsFile, SafetensorsMetadata } from './io/safetensors.js';
export { readTorchCheckpoint } from './io/torch-checkpoint.js';
export type { TorchCheckpointOptions } from './io/torch-checkpoint.js';
export { loadCheckpoint, mapCheckpointKey, LoadReportError } from './io/load-report.js';
export type {
  KeyMapping,
  LoadOptions,
  LoadReport,
  ShapeMismatch,
  StateDictSource,
} from './io/load-report.js';
// Data pipeline: preprocessing, label tables, manifests, phantoms, previews.
export { reorientToRas, rasOrientation, isRas } from './pipeline/reorient.js';
export type { RasOrientation } from './pipeline/reorient.js';
export { otsuThreshold, foregroundBox, cropVolume } from './pipeline/crop.js';
export type { VoxelBox, ForegroundOptions } from './pipeline/crop.js';
export { resampleVolume } from './pipeline/resample.js';
export type { InterpolationMode, ResampleOptions } from './pipeline/resample.js';
export type { Grid, WorldBounds } from './pipeline/grid.js';
export { percentiles, foregroundWindow, normalizeIntensity } from './pipeline/intensity.js';
export type { IntensityOptions, IntensityWindow } from './pipeline/intensity.js';
export { remapLabels, restoreLabels, labelValues, findInvalidLabel } from './pipeline/labels.js';
export type { RemappedLabels } from './pipeline/labels.js';
export { loadStructureTable, groupLabels } from './pipeline/structures.js';
export type { StructureRow, StructureTable } from './pipeline/structures.js';
export { preprocess, preprocessImage, preprocessLabels, toSourceGrid } from './pipeline/preprocess.js';
export type {
  LabelOptions,
  PreprocessOptions,
  PreprocessedVolume,
  ToSourceOptions,
} from './pipeline/preprocess.js';
export { ManifestError, parseManifest, manifestFiles } from './pipeline/manifest.js';
export type {
  DatasetManifest,
  LabelledScan,
  ManifestReport,
  ScanSummary,
  ValidateOptions,
  VolumeLoader,
} from './pipeline/manifest.js';
export { validateManifest } from './pipeline/manifest-validate.js';
export { makePhantom, PHANTOM_LABELS } from './pipeline/phantom.js';
export type { Phantom, PhantomOptions } from './pipeline/phantom.js';
export { renderSlices, prepareVolume, labelColor } from './pipeline/slices.js';
export type {
  Plane,
  PreparedVolume,
  RgbaImage,
  SliceOptions,
  VolumeLike,
} from './pipeline/slices.js';
export {
  renderPreview,
  previewPng,
  renderPanels,
  panelPng,
  encodePng,
} from './pipeline/preview.js';
export type { Panel, PanelOptions, PreviewOptions } from './pipeline/preview.js';
export { Conv2d, Conv3d } from './nn/conv.js';
export type { ConvOptions, Size2 } from './nn/conv.js';
export {
  SAM_CONFIGS,
  DEFAULT_CPU_TEACHER,
  samConfig,
  samEncoderShapes,
  samEncoderParameterCount,
} from './nn/sam/config.js';
export type { SamConfigName, SamEncoderConfig } from './nn/sam/config.js';
export { SamImageEncoder } from './nn/sam/encoder.js';
export type { SamEncoderOptions } from './nn/sam/encoder.js';
export {
  SamAttention,
  attend,
  decomposedRelativeBias,
  planAttentionTiles,
  relativePositionTable,
  windowPartition,
  windowUnpartition,
} from './nn/sam/attention.js';
export type { AttentionGrid, RelativeBias } from './nn/sam/attention.js';
export { LayerNorm, LayerNorm2d, MlpBlock, PatchEmbed, SamBlock } from './nn/sam/blocks.js';
export { MaskPromptEncoder2d, MaskPromptEncoder3d } from './nn/sam/prompt-encoder.js';
export type { MaskPromptOptions } from './nn/sam/prompt-encoder.js';
export {
  SAM_PIXEL_MEAN,
  SAM_PIXEL_STD,
  resizedShape,
  samPreprocess,
} from './nn/sam/preprocess.js';
export type { IntensityRange, SamPreprocessOptions } from './nn/sam/preprocess.js';
export {
  SAM_IMAGE_ENCODER_KEYS,
  SAM_MASK_PROMPT_KEYS,
  inferSamConfig,
  loadWeights,
  readSamCheckpoint,
} from './nn/sam/key-map.js';
export {
  RANDOM_TEACHER,
  SamTeacher,
  checkpointIdentity,
  createSamTeacher,
  extractTeacherFeatures,
  teacherCacheKey,
} from './pipeline/teacher.js';
export type {
  SamCheckpoint,
  SamTeacherOptions,
  TeacherFeatureCache,
  TeacherFeatureMeta,
  TeacherFeatures,
  TeacherInfo,
} from './pipeline/teacher.js';
// RRL-MedSAM: the networks and the two-stage training loop.
export {
  AutoPromptDecoder,
  Encoder3d,
  ProjectionHead,
  RRL_PRESETS,
  RegistrationDecoder,
  RrlMedSam,
  SAM_VIT_B_PARAMETERS,
  SegmentationDecoder,
  encoderParameterCount,
  rrlConfig,
} from './nn/rrl/index.js';
export type {
  FeaturePyramid,
  ModelSummary,
  RrlConfigOptions,
  RrlModelConfig,
  RrlOutput,
  RrlPresetName,
} from './nn/rrl/index.js';
export {
  DEFAULT_LOSS_WEIGHTS,
  DEFAULT_TRAINER_CONFIG,
  Trainer,
  createTrainer,
  disposeTrainerState,
  variantModelOptions,
} from './pipeline/train/index.js';
export type {
  Augment,
  LossWeights,
  StepResult,
  TeacherSource,
  TrainerConfig,
  TrainerOptions,
  TrainerState,
  TrainingData,
  TrainingVariant,
} from './pipeline/train/index.js';
// Affine pre-alignment to the atlas and the flow of a voxel affine.
export {
  affineDeterminant,
  affineFlow,
  affineFromParameters,
  affineToIjk,
  affineToWorld,
  composeAffines,
  identityAffine,
  invertAffine,
} from './pipeline/affine-flow.js';
export type { AffineParameters, VoxelAffine } from './pipeline/affine-flow.js';
export { alignAffine, intensityCentroid } from './pipeline/affine-align.js';
export type {
  AffineAlignment,
  AlignAffineOptions,
  AlignSimilarity,
} from './pipeline/affine-align.js';
export type { AlignLevelOptions } from './pipeline/affine-schedule.js';
export { alignedToSourceGrid, alignedVolume } from './pipeline/aligned-volume.js';
export type { AlignedVolume, AlignmentRecord } from './pipeline/aligned-volume.js';
export { augment, createAugmenter } from './pipeline/augment.js';
export type {
  AugmentOptions,
  AugmentTransform,
  Augmented,
} from './pipeline/augment.js';
// Evaluation metrics, summaries, report renderings and panels.
export * from './pipeline/evaluate/index.js';
// Trained model folders and whole-scan segmentation, as the web page runs
// them: decode a folder's files from bytes, then segment a scan on its own grid.
export { decodeModelFolder, MODEL_FILES } from './pipeline/model-folder.js';
export type { LoadedModel, ModelAtlas, ModelDescriptor, ModelFiles, ModelPreprocessing } from './pipeline/model-folder.js';
export { segmentScan } from './pipeline/experiment.js';
export type { SegmentationResult, SegmentationStage, SegmentScanOptions } from './pipeline/experiment.js';
export { warpScanThroughField } from './pipeline/warp-scan.js';
export type { WarpScanMode } from './pipeline/warp-scan.js';
// Instance optimisation of the registration on one pair.
export { DEFAULT_REFINE_MODE, REFINE_LEARNING_RATES, refineOptionsOf, refineRegistration } from './pipeline/refine.js';
export type { RefineMode, RefineOptions, RefineResult } from './pipeline/refine.js';
