// Batch normalisation with PyTorch's semantics, and its backward:
// batchStats (per-channel mean and biased variance) and batchNorm (with
// running statistics updated in training mode).
//
// Layout: x is [N, C, ...spatial], for volumes [N, C, D, H, W]; every
// statistic is per channel, over N and the spatial axes.

import { record } from '../autograd/node.js';
import {
  rowStatistics,
  runningStatistics,
  updateRunningStats,
  type RowGeometry,
} from '../kernels/norm.js';
import { formatShape, shapeSize, type Tensor } from '../tensor.js';
import { binaryKernel } from './elementwise.js';
import { checkAffine, checkEps, checkInput, rowNorm } from './norm.js';
import { expandKernel, stridedCopyKernel } from './reduce.js';

function channelGeometry(x: Tensor): RowGeometry {
  const [n, c] = x.shape;
  return {
    rows: n * c,
    length: shapeSize(x.shape.slice(2)),
    rowsPerStat: 1,
    statCount: c,
    channels: c,
    perPosition: false,
  };
}

/** Throws unless every channel has more than one value. */
function checkBatchCount(op: string, x: Tensor): number {
  const count = x.size / x.shape[1];
  if (count < 2) {
    throw new RangeError(
      `${op}: input ${formatShape(x.shape)} has ${count} value per channel; ` +
        'batch statistics need more than one (as in PyTorch training mode)',
    );
  }
  return count;
}

/** Shape [1, C, 1, ...] that broadcasts a per-channel vector against x. */
function channelShape(x: Tensor): number[] {
  return x.shape.map((d, i) => (i === 1 ? d : 1));
}

/**
 * Per-channel mean and biased variance of x [N, C, D, H, W] (or any
 * [N, C, ...]) over N and the spatial axes, the statistics a BatchNorm3d
 * normalises with in training mode. Both results are [C] and take
 * gradients: d mean / dx = 1 / n and d variance / dx = 2 (x - mean) / n
 * per channel, n = N * D * H * W.
 *
 * @example
 * const { mean, variance } = batchStats(features); // features [2, 16, 32, 32, 32]
 */
export function batchStats(x: Tensor): { mean: Tensor; variance: Tensor } {
  const op = 'batchStats';
  checkInput(op, x, 2, '[N, C, ...spatial]');
  const c = x.shape[1];
  const count = x.size / c;
  const stats = rowStatistics(op, x, channelGeometry(x), 0);
  const mean = stridedCopyKernel(op, stats, { shape: [c], strides: [4], offset: 0 });
  const variance = stridedCopyKernel(op, stats, { shape: [c], strides: [4], offset: 2 });
  stats.dispose();

  record(`${op} mean`, mean, [x], [], (grad) => [
    expandKernel(`${op} mean gradient`, grad, channelShape(x), x.shape, 1 / count),
  ]);
  record(`${op} variance`, variance, [x], [x, mean], (grad, [savedX, savedMean]) => {
    const label = `${op} variance gradient`;
    const meanView = savedMean.share(channelShape(x));
    const gradView = grad.share(channelShape(x));
    const centered = binaryKernel(label, 'x - y', savedX, meanView);
    const gx = binaryKernel(label, 'x * y * alpha', centered, gradView, 2 / count);
    for (const t of [meanView, gradView, centered]) t.dispose();
    return [gx];
  });
  return { mean, variance };
}

export interface BatchNormOptions {
  /** Scale applied after normalising, [C]. */
  weight?: Tensor | null;
  /** Shift added after scaling, [C]. */
  bias?: Tensor | null;
  /**
   * Normalise with the batch's statistics and update the running ones
   * (true), or normalise with the running statistics (false, the default,
   * as in torch.nn.functional.batch_norm).
   */
  training?: boolean;
  /** Weight of the batch statistics in the running update. Default 0.1. */
  momentum?: number;
  /** Added to the variance before the square root. Default 1e-5. */
  eps?: number;
}

function checkRunning(
  op: string,
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  training: boolean,
): void {
  if (Boolean(runningMean) !== Boolean(runningVar)) {
    throw new RangeError(
      `${op}: give both running mean and running variance or neither, got ` +
        `${runningMean ? 'only the mean' : 'only the variance'}`,
    );
  }
  if (!training && !runningMean) {
    throw new RangeError(
      `${op}: evaluation mode (training false) needs running statistics; ` +
        'pass them or set training: true',
    );
  }
  const c = x.shape[1];
  checkAffine(op, 'running mean', runningMean, [c], x, 'one value per channel');
  checkAffine(op, 'running variance', runningVar, [c], x, 'one value per channel');
}

/**
 * Batch normalisation like torch.nn.functional.batch_norm on x
 * [N, C, D, H, W] (or any [N, C, ...]). In training mode each channel is
 * normalised by its batch mean and biased variance (over N and the
 * spatial axes), and the running statistics, when given, are updated in
 * place: running = (1 - momentum) * running + momentum * batch, with the
 * unbiased batch variance for the running variance, as PyTorch does. In
 * evaluation mode the running statistics normalise and stay unchanged.
 * weight and bias ([C]) scale and shift when given. Gradients reach x,
 * weight and bias; running statistics take none.
 *
 * NOTE: momentum = null (PyTorch's cumulative average) is not supported.
 *
 * @example
 * const y = batchNorm(x, runningMean, runningVar, { weight, bias, training: true });
 */
export function batchNorm(
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  options: BatchNormOptions = {},
): Tensor {
  const op = 'batchNorm';
  checkInput(op, x, 2, '[N, C, ...spatial]');
  const c = x.shape[1];
  const training = options.training ?? false;
  checkRunning(op, x, runningMean, runningVar, training);
  const weight = options.weight ?? null;
  const bias = options.bias ?? null;
  checkAffine(op, 'weight', weight, [c], x, 'one value per channel');
  checkAffine(op, 'bias', bias, [c], x, 'one value per channel');
  const eps = checkEps(op, options.eps ?? 1e-5);
  const momentum = options.momentum ?? 0.1;
  if (!Number.isFinite(momentum)) {
    throw new RangeError(`${op}: momentum must be a finite number, got ${momentum}`);
  }

  const g = channelGeometry(x);
  if (!training) {
    const stats = runningStatistics(op, runningMean!, runningVar!, eps);
    const { out } = rowNorm(op, x, g, weight, bias, eps, stats);
    stats.dispose();
    return out;
  }
  const count = checkBatchCount(op, x);
  const { out, stats } = rowNorm(op, x, g, weight, bias, eps);
  if (runningMean && runningVar) {
    updateRunningStats(op, stats, runningMean, runningVar, momentum, count);
  }
  stats.dispose();
  return out;
}
