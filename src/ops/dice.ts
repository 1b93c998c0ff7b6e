// Soft Dice loss (with backward to both inputs) and one-hot encoding of
// label maps.
//
// Layout: probabilities and targets are [N, K, D, H, W] float32, with K
// classes and class 0 the background. Label maps are [N, 1, D, H, W] or
// [N, D, H, W] and contain integer class ids.

import { isGradEnabled, record } from '../autograd/node.js';
import { diceBackwardKernel, diceForwardKernels } from '../kernels/dice.js';
import { oneHotKernel } from '../kernels/one_hot.js';
import { formatShape, shapeSize, tensor, Tensor } from '../tensor.js';

export interface DiceLossOptions {
  /** Leave class 0 out of the mean. Default false (MONAI's include_background=True). */
  excludeBackground?: boolean;
  /** Added to the numerator and the denominator of every Dice. Default 1e-5. */
  epsilon?: number;
}

/**
 * Computes the soft Dice loss of class probabilities against a (soft or
 * one-hot) target. For every sample n and class k, with sums over D, H, W:
 *   dice[n, k] = (2 sum(p t) + epsilon) / (sum(p) + sum(t) + epsilon)
 * and the loss is 1 - the mean of dice over samples and classes (classes
 * 1..K-1 when excludeBackground). Returns a scalar (shape []).
 *
 * This is the default of MONAI's DiceLoss (monai/losses/dice.py): Dice per
 * sample and class (batch=False), with 1e-5 added to the numerator and the
 * denominator (smooth_nr, smooth_dr). A class empty in both p and t
 * therefore has Dice 1 and finite gradients. NOTE: VoxelMorph's Dice loss
 * is also per sample, but it returns -mean(dice) and clamps the
 * denominator at 1e-5 instead of adding epsilon, so its values differ by 1
 * and for nearly empty classes.
 *
 * @example
 * const loss = diceLoss(softmax(logits, 1), oneHot(labels, 5));
 */
export function diceLoss(probs: Tensor, target: Tensor, options: DiceLossOptions = {}): Tensor {
  const op = 'diceLoss';
  const sameShape =
    probs.rank === target.rank && probs.shape.every((dim, i) => dim === target.shape[i]);
  if (probs.rank !== 5 || !sameShape) {
    throw new RangeError(
      `${op}: probs ${formatShape(probs.shape)} and target ` +
        `${formatShape(target.shape)} must have the same [N, K, D, H, W] shape`,
    );
  }
  const excludeBackground = options.excludeBackground ?? false;
  const firstClass = excludeBackground ? 1 : 0;
  const k = probs.shape[1];
  if (probs.size === 0 || k - firstClass < 1) {
    throw new RangeError(
      `${op}: probs ${formatShape(probs.shape)} has no class to average ` +
        `(need N >= 1, voxels >= 1 and K >= ${firstClass + 1}` +
        `${excludeBackground ? ' with excludeBackground' : ''})`,
    );
  }
  const epsilon = options.epsilon ?? 1e-5;
  if (!(epsilon > 0) || !Number.isFinite(epsilon)) {
    throw new RangeError(`${op}: epsilon ${epsilon} must be a positive finite number`);
  }

  const { loss, coefficients } = diceForwardKernels(op, probs, target, firstClass, epsilon);
  if (!isGradEnabled() || !(probs.requiresGrad || target.requiresGrad)) {
    coefficients.dispose();
    return loss;
  }
  const out = record(
    op,
    loss,
    [probs, target],
    [probs, target, coefficients],
    (grad, [savedProbs, savedTarget, savedCoefficients]) => {
      return diceBackwardKernel(
        op,
        savedProbs,
        savedTarget,
        savedCoefficients,
        grad,
        firstClass,
        { probs: probs.requiresGrad, target: target.requiresGrad },
      );
    },
  );
  coefficients.dispose();
  return out;
}

/** Integer label values on the host, one per voxel. */
export type LabelArray = Float32Array | Int32Array | Uint8Array | Uint16Array;

/** A label map on the host: values and their [N, 1, D, H, W] or [N, D, H, W] shape. */
export interface LabelVolume {
  data: LabelArray;
  shape: readonly number[];
}

function oneHotShape(op: string, shape: readonly number[], numClasses: number): number[] {
  const valid =
    (shape.length === 5 && shape[1] === 1) || shape.length === 4;
  if (!valid) {
    throw new RangeError(
      `${op}: labels of shape ${formatShape(shape)} must be [N, 1, D, H, W] or [N, D, H, W]`,
    );
  }
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new RangeError(`${op}: numClasses ${numClasses} must be a positive integer`);
  }
  return [shape[0], numClasses, ...shape.slice(shape.length - 3)];
}

/** Throws naming the first value of `data` that is not an integer in [0, numClasses). */
function checkLabels(op: string, labels: LabelVolume, numClasses: number): void {
  const { data } = labels;
  for (let i = 0; i < data.length; i++) {
    const value = data[i];
    if (Number.isInteger(value) && value >= 0 && value < numClasses) continue;
    throw new RangeError(
      `${op}: label ${value} at index ${i} of labels ${formatShape(labels.shape)} ` +
        `is not a class id in [0, ${numClasses}); relabel the map to ` +
        `0..${numClasses - 1} or raise numClasses`,
    );
  }
}

/**
 * Encodes a label map of integer class ids as K channels of 0 and 1:
 * [N, 1, D, H, W] (or [N, D, H, W]) to [N, K, D, H, W] float32.
 *
 * A label that is not an integer in [0, numClasses) is an error naming the
 * op, the value and its index. Host labels (a LabelVolume) are checked
 * before they are uploaded and throw a RangeError at once. A device tensor
 * is checked by the kernel without a readback: its bad voxels encode as
 * all zeros, and the next sync() (or toArray()) throws the RangeError.
 *
 * @example
 * const target = oneHot({ data: labels, shape: [1, 1, d, h, w] }, 5);
 */
export function oneHot(labels: Tensor | LabelVolume, numClasses: number): Tensor {
  const op = 'oneHot';
  const outShape = oneHotShape(op, labels.shape, numClasses);
  if (labels instanceof Tensor) return oneHotKernel(op, labels, outShape);

  const expected = shapeSize(labels.shape);
  if (labels.data.length !== expected) {
    throw new RangeError(
      `${op}: labels of shape ${formatShape(labels.shape)} need ${expected} ` +
        `values, got ${labels.data.length}`,
    );
  }
  checkLabels(op, labels, numClasses);
  const values = labels.data instanceof Float32Array ? labels.data : Float32Array.from(labels.data);
  const uploaded = tensor(values, labels.shape);
  try {
    return oneHotKernel(op, uploaded, outShape);
  } finally {
    uploaded.dispose();
  }
}
