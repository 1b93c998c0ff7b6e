// Normalisation layers with PyTorch's semantics, and their backward:
// instanceNorm, groupNorm, layerNorm and layerNormChannels (SAM's
// LayerNorm2d). Batch norm is in batch-norm.ts.
//
// Layout: x is [N, C, ...spatial], for volumes [N, C, D, H, W], except for
// layerNorm, which normalises the trailing dimensions of any shape (SAM's
// [B, H, W, C] tokens). Variances are biased (divided by the count), as in
// PyTorch's normalisation layers. Statistics are computed per piece in two
// passes and merged in a fixed order, so they are stable, never negative
// and bitwise reproducible. The backward rules are the closed-form
// normalisation gradient (kernels/norm.ts and kernels/norm_fused.ts).
//
// NOTE: the mean is a float32, so x - mean carries up to half an ulp of the
// mean. Inputs whose mean is large against their spread lose digits by
// that ratio: a mean of 1000 and a standard deviation of 0.1 leave about
// 3e-4 relative error in the output (pinned by test/norm.test.ts).

import { record } from '../autograd/node.js';
import { checkOutput } from '../debug.js';
import {
  normOptions,
  rowApply,
  rowGrad,
  rowGradSums,
  rowStatistics,
  type RowGeometry,
} from '../kernels/norm.js';
import {
  stridedAffineGrad,
  stridedNorm,
  stridedNormGrad,
  type StridedGeometry,
} from '../kernels/norm_fused.js';
import { formatShape, shapeSize, type Tensor } from '../tensor.js';
import { resolveAxes } from './axes.js';
import { sameShape } from './shape.js';

export interface NormOptions {
  /** Scale applied after normalising, one value per channel. */
  weight?: Tensor | null;
  /** Shift added after scaling, one value per channel. */
  bias?: Tensor | null;
  /** Added to the variance before the square root. */
  eps?: number;
}

/** @internal Throws unless x is [N, C, ...] with at least `minRank` axes. */
export function checkInput(
  op: string,
  x: Tensor,
  minRank: number,
  layout: string,
): void {
  if (x.rank < minRank) {
    throw new RangeError(
      `${op}: input ${formatShape(x.shape)} must be ${layout} ` +
        `(rank >= ${minRank})`,
    );
  }
  if (x.size === 0) {
    throw new RangeError(
      `${op}: input ${formatShape(x.shape)} has no elements to normalise`,
    );
  }
}

/** @internal Throws unless `t` is absent or has exactly `shape`. */
export function checkAffine(
  op: string,
  name: string,
  t: Tensor | null,
  shape: readonly number[],
  x: Tensor,
  what: string,
): void {
  if (t && !sameShape(t.shape, shape)) {
    throw new RangeError(
      `${op}: ${name} ${formatShape(t.shape)} must have shape ` +
        `${formatShape(shape)} (${what} of input ${formatShape(x.shape)})`,
    );
  }
}

/** @internal Returns eps after checking that it is a finite number >= 0. */
export function checkEps(op: string, eps: number): number {
  if (!Number.isFinite(eps) || eps < 0) {
    throw new RangeError(`${op}: eps must be a finite number >= 0, got ${eps}`);
  }
  return eps;
}

/** Inputs that take part in autograd, in the order gradients are returned. */
function affineInputs(
  x: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
): Tensor[] {
  return [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
}

/** Gradients in the order of affineInputs. */
function affineGrads(
  gx: Tensor | null,
  weight: Tensor | null,
  gw: Tensor | null,
  bias: Tensor | null,
  gb: Tensor | null,
): (Tensor | null)[] {
  return [gx, ...(weight ? [gw] : []), ...(bias ? [gb] : [])];
}

/**
 * Views a flat affine gradient with the parameter's shape (layer norm's
 * weight may have several axes); null when there is no parameter.
 */
function reshapeGrad(grad: Tensor, parameter: Tensor | null): Tensor | null {
  if (!parameter) {
    grad.dispose();
    return null;
  }
  if (sameShape(grad.shape, parameter.shape)) return grad;
  const view = grad.share(parameter.shape);
  grad.dispose();
  return view;
}

/**
 * @internal Normalises x over the [rows, length] view of `g`, with batch
 * statistics or, when `fixedStats` is given ([statCount, 4] vec4(mean,
 * rstd, var, n)), with those (and no gradient through them). Records the
 * backward rule.
 */
export function rowNorm(
  op: string,
  x: Tensor,
  g: RowGeometry,
  weight: Tensor | null,
  bias: Tensor | null,
  eps: number,
  fixedStats: Tensor | null = null,
): { out: Tensor; stats: Tensor } {
  const batchStatistics = fixedStats === null;
  const stats = fixedStats ?? rowStatistics(op, x, g, eps);
  const out = rowApply(op, x, stats, g, weight, bias);
  checkOutput(op, out, [x]);

  const backward = (grad: Tensor, saved: readonly Tensor[]) => {
    const [savedX, savedStats, savedWeight] = saved;
    const w = weight ? savedWeight : null;
    const wantAffine = Boolean(weight?.requiresGrad || bias?.requiresGrad);
    const channelAffine = wantAffine && !g.perPosition;
    let gx: Tensor | null = null;
    let gw: Tensor | null = null;
    let gb: Tensor | null = null;
    if (x.requiresGrad || channelAffine) {
      const sums = rowGradSums(op, savedX, grad, savedStats, g, w, channelAffine);
      if (x.requiresGrad) {
        const statSums = batchStatistics ? sums.statSums : null;
        gx = rowGrad(op, savedX, grad, savedStats, g, w, statSums);
      }
      sums.statSums.dispose();
      gw = sums.weightGrad;
      gb = sums.biasGrad;
    }
    if (wantAffine && g.perPosition) {
      const view = { outer: g.rows, channels: g.length, inner: 1 };
      const affine = stridedAffineGrad(op, savedX, grad, savedStats, view);
      gw = affine.weightGrad;
      gb = affine.biasGrad;
    }
    gw = gw && reshapeGrad(gw, weight);
    gb = gb && reshapeGrad(gb, bias);
    return affineGrads(gx, weight, gw, bias, gb);
  };
  const saved = [x, stats, ...(weight ? [weight] : [])];
  record(op, out, affineInputs(x, weight, bias), saved, backward);
  return { out, stats };
}

/**
 * @internal Normalises x over the channels of the strided view of `g`
 * (one statistic per (outer, inner) position) and records the backward
 * rule.
 */
function stridedNormOp(
  op: string,
  x: Tensor,
  g: StridedGeometry,
  weight: Tensor | null,
  bias: Tensor | null,
  eps: number,
): Tensor {
  const { out, stats } = stridedNorm(op, x, g, weight, bias, eps);
  checkOutput(op, out, [x]);

  const backward = (grad: Tensor, saved: readonly Tensor[]) => {
    const [savedX, savedStats, savedWeight] = saved;
    const w = weight ? savedWeight : null;
    let gx: Tensor | null = null;
    if (x.requiresGrad) {
      gx = stridedNormGrad(op, savedX, grad, savedStats, g, w);
    }
    let gw: Tensor | null = null;
    let gb: Tensor | null = null;
    if (weight?.requiresGrad || bias?.requiresGrad) {
      const affine = stridedAffineGrad(op, savedX, grad, savedStats, g);
      gw = affine.weightGrad;
      gb = affine.biasGrad;
    }
    gw = gw && reshapeGrad(gw, weight);
    gb = gb && reshapeGrad(gb, bias);
    return affineGrads(gx, weight, gw, bias, gb);
  };
  const saved = [x, stats, ...(weight ? [weight] : [])];
  record(op, out, affineInputs(x, weight, bias), saved, backward);
  stats.dispose();
  return out;
}

/** Product of the axes after N and C. */
function spatialSize(x: Tensor): number {
  return shapeSize(x.shape.slice(2));
}

/**
 * Normalises every (n, c) volume of x [N, C, D, H, W] (or any
 * [N, C, ...spatial]) by its own mean and biased variance, like
 * torch.nn.functional.instance_norm with batch statistics. The result is
 * then scaled by weight[c] and shifted by bias[c] when given ([C] each).
 *
 * @example
 * const y = instanceNorm(x, { weight, bias }); // x [1, 16, 64, 64, 64]
 */
export function instanceNorm(x: Tensor, options: NormOptions = {}): Tensor {
  const op = 'instanceNorm';
  checkInput(op, x, 3, '[N, C, ...spatial]');
  const [n, c] = x.shape;
  const weight = options.weight ?? null;
  const bias = options.bias ?? null;
  checkAffine(op, 'weight', weight, [c], x, 'one value per channel');
  checkAffine(op, 'bias', bias, [c], x, 'one value per channel');
  const eps = checkEps(op, options.eps ?? 1e-5);
  const spatial = spatialSize(x);
  if (spatial === 1) {
    throw new RangeError(
      `${op}: input ${formatShape(x.shape)} has one spatial element per ` +
        'channel, so every output would be 0 (PyTorch rejects it too); ' +
        'expected more than one',
    );
  }

  const g: RowGeometry = {
    rows: n * c,
    length: spatial,
    rowsPerStat: 1,
    statCount: n * c,
    channels: c,
    perPosition: false,
  };
  const { out, stats } = rowNorm(op, x, g, weight, bias, eps);
  stats.dispose();
  return out;
}

/**
 * Group normalisation like torch.nn.functional.group_norm. The C channels
 * of x [N, C, D, H, W] (or any [N, C, ...]) form `groups` consecutive
 * groups of C / groups channels. Each (n, group) is normalised by its mean
 * and biased variance over its channels and spatial positions. The result
 * is then scaled by weight[c] and shifted by bias[c] when given ([C]
 * each). groups must divide C.
 *
 * @example
 * const y = groupNorm(x, 4, { weight, bias }); // x [2, 16, 32, 32, 32]
 */
export function groupNorm(
  x: Tensor,
  groups: number,
  options: NormOptions = {},
): Tensor {
  const op = 'groupNorm';
  checkInput(op, x, 2, '[N, C, ...spatial]');
  const [n, c] = x.shape;
  if (!Number.isInteger(groups) || groups < 1 || c % groups !== 0) {
    throw new RangeError(
      `${op}: groups ${groups} must be a positive integer that divides the ` +
        `${c} channels of input ${formatShape(x.shape)}`,
    );
  }
  const weight = options.weight ?? null;
  const bias = options.bias ?? null;
  checkAffine(op, 'weight', weight, [c], x, 'one value per channel');
  checkAffine(op, 'bias', bias, [c], x, 'one value per channel');
  const eps = checkEps(op, options.eps ?? 1e-5);

  const g: RowGeometry = {
    rows: n * c,
    length: spatialSize(x),
    rowsPerStat: c / groups,
    statCount: n * groups,
    channels: c,
    perPosition: false,
  };
  const { out, stats } = rowNorm(op, x, g, weight, bias, eps);
  stats.dispose();
  return out;
}

/**
 * Trailing dimensions that layerNorm normalises over. Either their sizes,
 * like PyTorch's normalized_shape (a single number is one dimension), or
 * the axes themselves, which must be the last ones (negative axes count
 * from the end).
 */
export type NormalizedShape =
  | number
  | readonly number[]
  | { axes: number | readonly number[] };

function resolveNormalizedShape(
  op: string,
  x: Tensor,
  normalized: NormalizedShape,
): number[] {
  if (typeof normalized === 'object' && 'axes' in normalized) {
    const axes = resolveAxes(op, x.shape, normalized.axes);
    const first = x.rank - axes.length;
    if (axes.length === 0 || axes.some((axis, i) => axis !== first + i)) {
      throw new RangeError(
        `${op}: axes ${JSON.stringify(normalized.axes)} of input ` +
          `${formatShape(x.shape)} must be the last ones (for example -1, or -2 and -1)`,
      );
    }
    return x.shape.slice(first);
  }
  const shape = typeof normalized === 'number' ? [normalized] : [...normalized];
  const trailing = x.shape.slice(x.rank - shape.length);
  if (shape.length === 0 || shape.length > x.rank || !sameShape(shape, trailing)) {
    throw new RangeError(
      `${op}: normalized shape ${formatShape(shape)} must match the last ` +
        `dimensions of input ${formatShape(x.shape)}`,
    );
  }
  return shape;
}

/**
 * Layer normalisation like torch.nn.functional.layer_norm. Every slice
 * over the trailing dimensions `normalized` (for SAM's [B, H, W, C]
 * tokens, the last one) is normalised by its mean and biased variance.
 * The result is then multiplied elementwise by weight and shifted by bias
 * when given (each of the normalised shape).
 *
 * @example
 * const y = layerNorm(tokens, [768], { weight, bias, eps: 1e-6 });
 * const z = layerNorm(tokens, { axes: -1 }); // the same slices, no affine
 */
export function layerNorm(
  x: Tensor,
  normalized: NormalizedShape,
  options: NormOptions = {},
): Tensor {
  const op = 'layerNorm';
  checkInput(op, x, 1, 'a tensor');
  const shape = resolveNormalizedShape(op, x, normalized);
  const weight = options.weight ?? null;
  const bias = options.bias ?? null;
  checkAffine(op, 'weight', weight, shape, x, 'the normalized shape');
  checkAffine(op, 'bias', bias, shape, x, 'the normalized shape');
  const eps = checkEps(op, options.eps ?? 1e-5);
  const length = shapeSize(shape);
  const rows = x.size / length;

  // A slice of up to fusedLimit elements is one invocation's work. The row
  // kernels split a longer one across invocations.
  if (length <= normOptions.fusedLimit) {
    const view = { outer: rows, channels: length, inner: 1 };
    return stridedNormOp(op, x, view, weight, bias, eps);
  }
  const g: RowGeometry = {
    rows,
    length,
    rowsPerStat: 1,
    statCount: rows,
    channels: 1,
    perPosition: true,
  };
  const { out, stats } = rowNorm(op, x, g, weight, bias, eps);
  stats.dispose();
  return out;
}

/**
 * Layer normalisation over the channel axis of x [N, C, ...spatial], like
 * SAM's LayerNorm2d, which is written for [N, C, H, W] but here takes any
 * number of spatial axes. At every (n, position) the C channel values are
 * normalised by their mean and biased variance, then scaled by weight[c]
 * and shifted by bias[c] when given ([C] each). eps defaults to SAM's
 * 1e-6.
 *
 * @example
 * const y = layerNormChannels(features, { weight, bias }); // [1, 256, 64, 64]
 */
export function layerNormChannels(
  x: Tensor,
  options: NormOptions = {},
): Tensor {
  const op = 'layerNormChannels';
  checkInput(op, x, 2, '[N, C, ...spatial]');
  const [n, c] = x.shape;
  const weight = options.weight ?? null;
  const bias = options.bias ?? null;
  checkAffine(op, 'weight', weight, [c], x, 'one value per channel');
  checkAffine(op, 'bias', bias, [c], x, 'one value per channel');
  const eps = checkEps(op, options.eps ?? 1e-6);
  const view = { outer: n, channels: c, inner: spatialSize(x) };
  return stridedNormOp(op, x, view, weight, bias, eps);
}
