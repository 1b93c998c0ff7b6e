// The training losses of RRL-MedSAM, built from the runtime's ops.
//
// - L_smooth = smoothnessLoss(phi): VoxelMorph's l2 gradient loss;
// - L_sim = -NCC(x_a o phi, x_u) with a 9^3 window (nccLoss is minus NCC);
// - L_dice = Dice(y_a o phi, yhat_m), where y_a o phi is the one-hot atlas
//   label map warped trilinearly, so this loss has gradients into phi;
// - L_reg = l1 L_smooth + l2 L_sim + l3 L_dice;
// - L_seg^g = Dice(y_a o phi, yhat_g) and L_seg^m = Dice(y_a o phi,
//   yhat_m), with the pseudo label y_a o phi detached;
// - L_rec = mean((f_sam(x) - P(f_lie(x)))^2), the teacher's features
//   resampled trilinearly to the student's bottleneck grid.
// "Dice" is the soft Dice loss 1 - mean Dice (diceLoss). With a
// segmentationCrossEntropy weight w > 0, each L_seg adds w times the
// cross-entropy -mean over voxels of sum_k T_k log P_k (not in the paper).
//
// Layout: images [1, 1, D, H, W], probabilities and one-hot labels
// [1, K + 1, D, H, W], flow [1, 3, D, H, W], teacher features
// [256, D', h, w] or [1, 256, D', h, w].

import { add, mul, scale, sub } from '../../ops/elementwise.js';
import { diceLoss } from '../../ops/dice.js';
import { nccLoss } from '../../ops/ncc.js';
import { mean, sum } from '../../ops/reduce.js';
import { clamp, log } from '../../ops/unary.js';
import { smoothnessLoss } from '../../ops/smoothness.js';
import { upsample3d } from '../../ops/upsample.js';
import { reshape } from '../../ops/view.js';
import { warp } from '../../ops/warp.js';
import { formatShape, tidy, type Tensor } from '../../tensor.js';
import { noGrad } from '../../autograd/node.js';
import { detach } from '../../nn/rrl/model.js';

/** Weights of the loss terms. */
export interface LossWeights {
  /** l1, of L_smooth. */
  smoothness: number;
  /** l2, of L_sim. */
  similarity: number;
  /** l3, of L_dice inside L_reg. */
  registrationDice: number;
  /** Of L_seg^m in L_med = L_reg + L_seg^m. */
  medicalSegmentation: number;
  /** Of L_seg^g in L_gen. */
  generalSegmentation: number;
  /** Of L_rec (stage 1 only). */
  distillation: number;
  /**
   * Of a cross-entropy term added to L_seg^m and L_seg^g (0: Dice alone,
   * as in the RRL-MedSAM paper).
   */
  segmentationCrossEntropy: number;
}

/**
 * Decision: every weight is 1, because the RRL-MedSAM paper gives no
 * values. For l1 this is also the smoothness weight commonly used with
 * VoxelMorph's NCC loss.
 */
export const DEFAULT_LOSS_WEIGHTS: Readonly<LossWeights> = Object.freeze({
  smoothness: 1,
  similarity: 1,
  registrationDice: 1,
  medicalSegmentation: 1,
  generalSegmentation: 1,
  distillation: 1,
  segmentationCrossEntropy: 0,
});

/** Smallest probability the cross-entropy takes the log of, so log(0) stays finite. */
const CROSS_ENTROPY_FLOOR = 1e-6;

export interface LossOptions {
  weights: LossWeights;
  /** NCC window edge in voxels (default 9). */
  nccWindow: number;
  /** Leave the background class out of every Dice loss (default false). */
  diceExcludeBackground: boolean;
  /**
   * Stop L_dice's gradient at yhat_m (default true), so L_dice trains the
   * registration path and L_seg^m the segmentation path. Both still reach
   * the shared encoder f_med.
   */
  detachSegmentationInRegistration: boolean;
}

/** The atlas moved by phi: image and one-hot labels, both trilinear. */
export interface WarpedAtlas {
  /** x_a o phi [1, 1, D, H, W]. */
  image: Tensor;
  /** y_a o phi [1, K + 1, D, H, W], soft where voxels blend. */
  labels: Tensor;
}

/**
 * Warps the atlas image and its one-hot labels by `flow`. Pass
 * `labelGradient` false only when every loss that reads the labels detaches
 * them or has weight 0. The backward pass then skips their K + 1 channels.
 */
export function warpAtlas(
  atlasImage: Tensor,
  atlasOneHot: Tensor,
  flow: Tensor,
  labelGradient = true,
): WarpedAtlas {
  return tidy(() => ({
    image: warp(atlasImage, flow),
    labels: labelGradient
      ? warp(atlasOneHot, flow)
      : noGrad(() => warp(atlasOneHot, flow)),
  }));
}

/**
 * Computes a loss term that enters a sum with `weight`. At weight 0 the
 * term records no gradient. Its share of every gradient is then 0 while
 * the term is finite, so skipping it leaves the gradients bitwise unchanged.
 */
function weightedTerm(weight: number, term: () => Tensor): Tensor {
  return weight === 0 ? noGrad(term) : term();
}

/** The terms of L_reg and their weighted sum, scalars each. */
export interface RegistrationLosses {
  smoothness: Tensor;
  similarity: Tensor;
  dice: Tensor;
  total: Tensor;
}

/**
 * Computes L_reg = l1 L_smooth + l2 L_sim + l3 L_dice of a flow, the
 * warped atlas, the target image and yhat_m.
 */
export function registrationLosses(
  flow: Tensor,
  warped: WarpedAtlas,
  target: Tensor,
  medicalProbs: Tensor,
  options: LossOptions,
): RegistrationLosses {
  return tidy(() => {
    const { weights } = options;
    const smoothness = smoothnessLoss(flow);
    const similarity = nccLoss(warped.image, target, {
      window: options.nccWindow,
    });
    const segmentation = options.detachSegmentationInRegistration
      ? detach(medicalProbs)
      : medicalProbs;
    // At weight 0, L_dice is only reported, so it records no gradient.
    const dice = weightedTerm(weights.registrationDice, () =>
      diceLoss(segmentation, warped.labels, {
        excludeBackground: options.diceExcludeBackground,
      }),
    );
    const total = add(
      add(
        scale(smoothness, weights.smoothness),
        scale(similarity, weights.similarity),
      ),
      scale(dice, weights.registrationDice),
    );
    return { smoothness, similarity, dice, total };
  });
}

/**
 * Computes Dice(pseudo label, probs), plus the weighted cross-entropy when
 * weights.segmentationCrossEntropy > 0. The pseudo label is detached, so
 * the loss trains only the network that produced `probs`.
 */
export function segmentationLoss(
  probs: Tensor,
  pseudoLabel: Tensor,
  options: Pick<LossOptions, 'diceExcludeBackground'> & {
    weights?: Pick<LossWeights, 'segmentationCrossEntropy'>;
  },
): Tensor {
  return tidy(() => {
    const target = detach(pseudoLabel);
    const dice = diceLoss(probs, target, {
      excludeBackground: options.diceExcludeBackground,
    });
    const weight = options.weights?.segmentationCrossEntropy ?? 0;
    if (weight === 0) return dice;
    return add(dice, scale(crossEntropy(probs, target), weight));
  });
}

/**
 * Computes the soft-target cross-entropy -mean over voxels of
 * sum_k target_k log(probs_k) of [N, K, D, H, W] probabilities, with
 * probabilities below 1e-6 taken as 1e-6.
 */
export function crossEntropy(probs: Tensor, target: Tensor): Tensor {
  const voxels = probs.size / probs.shape[1];
  return tidy(() => {
    const logProbs = log(clamp(probs, CROSS_ENTROPY_FLOOR));
    return scale(sum(mul(target, logProbs)), -1 / voxels);
  });
}

/**
 * Resamples teacher features [C, D', h, w] or [1, C, D', h, w] trilinearly
 * (align_corners false) to the student's grid [1, C, d, h', w'].
 */
export function resampleTeacher(
  teacher: Tensor,
  grid: readonly number[],
): Tensor {
  const op = 'resampleTeacher';
  if (teacher.rank !== 4 && !(teacher.rank === 5 && teacher.shape[0] === 1)) {
    throw new RangeError(
      `${op}: teacher features ${formatShape(teacher.shape)} must be ` +
        '[C, D, h, w] (slices stacked along D) or [1, C, D, h, w]',
    );
  }
  return tidy(() => {
    const volume =
      teacher.rank === 4 ? reshape(teacher, [1, ...teacher.shape]) : teacher;
    const [d, h, w] = grid;
    const same =
      volume.shape[2] === d && volume.shape[3] === h && volume.shape[4] === w;
    if (same) return volume.share();
    return upsample3d(volume, { size: [d, h, w], mode: 'linear' });
  });
}

/**
 * Computes L_rec = mean((teacher - projected)^2) over channels and voxels,
 * with `teacher` resampled to the grid of `projected` [1, C, d, h, w].
 */
export function distillationLoss(projected: Tensor, teacher: Tensor): Tensor {
  const op = 'distillationLoss';
  const channels = teacher.shape[teacher.rank - 4];
  if (projected.rank !== 5 || projected.shape[1] !== channels) {
    throw new RangeError(
      `${op}: projected features ${formatShape(projected.shape)} must be ` +
        `[1, C, d, h, w] with the teacher's C = ${channels} (teacher ` +
        `${formatShape(teacher.shape)})`,
    );
  }
  return tidy(() => {
    const target = resampleTeacher(teacher, projected.shape.slice(2));
    const error = sub(target, projected);
    return mean(mul(error, error));
  });
}
