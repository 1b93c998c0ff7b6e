// The RRL-MedSAM training loop: losses, the two stages, the ablation
// variants and the step API.

export {
  DEFAULT_LOSS_WEIGHTS,
  crossEntropy,
  distillationLoss,
  registrationLosses,
  resampleTeacher,
  segmentationLoss,
  warpAtlas,
} from './losses.js';
export type {
  LossOptions,
  LossWeights,
  RegistrationLosses,
  WarpedAtlas,
} from './losses.js';
export { VARIANTS, variantModelOptions, variantSwitches } from './ablation.js';
export type { TrainingVariant, VariantSwitches } from './ablation.js';
export { stage1Iteration } from './stage1.js';
export { mutualEmaIteration, pairParameters, stage2Iteration } from './stage2.js';
export type {
  MutualEmaOptions,
  MutualEmaParts,
  Stage2Event,
  Stage2Result,
} from './stage2.js';
export { medicalPass } from './step.js';
export type {
  Batch,
  LossName,
  LossTensors,
  MedicalPass,
  StepContext,
} from './step.js';
export { scanIndexAt, iterationRandom } from './data.js';
export type {
  Augment,
  AugmentContext,
  HostArray,
  ScanLoader,
  TeacherSource,
  TrainingData,
} from './data.js';
export {
  DEFAULT_TRAINER_CONFIG,
  Trainer,
  createTrainer,
  disposeTrainerState,
} from './trainer.js';
export type {
  StepResult,
  TrainerConfig,
  TrainerOptions,
  TrainerState,
} from './trainer.js';
