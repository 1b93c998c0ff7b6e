// The batch of one training iteration, and the medical branch's forward
// pass with its losses, shared by both stages.

import { add, scale } from '../../ops/elementwise.js';
import type { Optimizer } from '../../optim/optimizer.js';
import { tidy, type Tensor } from '../../tensor.js';
import type { RrlMedSam } from '../../nn/rrl/model.js';
import type { VariantSwitches } from './ablation.js';
import {
  registrationLosses,
  segmentationLoss,
  warpAtlas,
  type LossOptions,
} from './losses.js';

/** The tensors of one iteration (batch size 1). */
export interface Batch {
  /** x_a [1, 1, D, H, W]. */
  atlasImage: Tensor;
  /** y_a one-hot [1, K + 1, D, H, W]. */
  atlasOneHot: Tensor;
  /** x_u [1, 1, D, H, W]. */
  target: Tensor;
  /** f_sam(x_u), [256, D', h, w] or [1, 256, D', h, w], or null. */
  teacher: Tensor | null;
}

/** Everything a stage's iteration needs besides the batch. */
export interface StepContext {
  model: RrlMedSam;
  medicalOptimizer: Optimizer;
  generalOptimizer: Optimizer;
  losses: LossOptions;
  switches: VariantSwitches;
  /** EMA coefficient a of stage 2. */
  alpha: number;
}

/** Names of the losses an iteration reports. */
export type LossName =
  | 'smoothness'
  | 'similarity'
  | 'registrationDice'
  | 'registration'
  | 'medicalSegmentation'
  | 'generalSegmentation'
  | 'distillation'
  | 'medical'
  | 'general'
  | 'total';

/** Scalar loss tensors by name; an iteration fills the ones it computes. */
export type LossTensors = Partial<Record<LossName, Tensor>>;

/** The medical branch's outputs and losses on one batch. */
export interface MedicalPass {
  flow: Tensor;
  /** y_a o phi, the pseudo label (still attached to phi's graph). */
  pseudoLabel: Tensor;
  medicalProbs: Tensor;
  losses: LossTensors;
  /** L_med = L_reg + w L_seg^m. */
  medical: Tensor;
}

/**
 * Runs f_med on the atlas and the target, the registration decoder, the
 * warp of the atlas and the medical decoder prompted by `prompt` (yhat_g,
 * or null without the auto-prompt), and computes L_reg and L_seg^m.
 */
export function medicalPass(
  context: StepContext,
  batch: Batch,
  prompt: Tensor | null,
): MedicalPass {
  return tidy(() => {
    const { model, losses: options } = context;
    const { atlasImage, target } = batch;
    const { flow, targetPyramid } = model.register(atlasImage, target);
    // The pseudo label is detached, so the labels' warp needs a gradient
    // only for L_dice.
    const warped = warpAtlas(
      batch.atlasImage,
      batch.atlasOneHot,
      flow,
      options.weights.registrationDice !== 0,
    );
    const medicalProbs = model.segmentMedical(targetPyramid, prompt);
    const registration = registrationLosses(
      flow,
      warped,
      batch.target,
      medicalProbs,
      options,
    );
    const medicalSegmentation = segmentationLoss(
      medicalProbs,
      warped.labels,
      options,
    );
    const medical = add(
      registration.total,
      scale(medicalSegmentation, options.weights.medicalSegmentation),
    );
    return {
      flow,
      pseudoLabel: warped.labels,
      medicalProbs,
      medical,
      losses: {
        smoothness: registration.smoothness,
        similarity: registration.similarity,
        registrationDice: registration.dice,
        registration: registration.total,
        medicalSegmentation,
        medical,
      },
    };
  });
}
