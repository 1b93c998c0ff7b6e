// CPU references (float64, plain loops) for the normalisation layers:
// instance, group, layer and batch normalisation and SAM's LayerNorm2d.
//
// Layout: x is [N, C, ...spatial] (for volumes [N, C, D, H, W]) except for
// layerNormRef, which normalises the trailing elements of any shape. Every
// variance is the biased one (divided by the count) unless stated, and each
// is computed in two passes (mean first, then squared deviations).

import type { NDArray } from './ndarray.js';

/**
 * How a normalisation reads a flat tensor: element i belongs to statistic
 * group `groupOf(i)` and takes weight and bias element `affineOf(i)`.
 */
interface Grouping {
  groups: number;
  groupOf: (i: number) => number;
  affineOf: (i: number) => number;
}

/** Per-group mean and biased variance, each in its own pass. */
export function groupMoments(
  x: NDArray,
  grouping: Pick<Grouping, 'groups' | 'groupOf'>,
): { mean: Float64Array; variance: Float64Array; count: Float64Array } {
  const { groups, groupOf } = grouping;
  const mean = new Float64Array(groups);
  const variance = new Float64Array(groups);
  const count = new Float64Array(groups);
  for (let i = 0; i < x.data.length; i++) {
    mean[groupOf(i)] += x.data[i];
    count[groupOf(i)] += 1;
  }
  for (let g = 0; g < groups; g++) mean[g] /= count[g];
  for (let i = 0; i < x.data.length; i++) {
    const deviation = x.data[i] - mean[groupOf(i)];
    variance[groupOf(i)] += deviation * deviation;
  }
  for (let g = 0; g < groups; g++) variance[g] /= count[g];
  return { mean, variance, count };
}

/** (x - mean) / sqrt(var + eps) * weight + bias with the given grouping. */
function normalize(
  x: NDArray,
  grouping: Grouping,
  weight: NDArray | null,
  bias: NDArray | null,
  eps: number,
): NDArray {
  const { mean, variance } = groupMoments(x, grouping);
  const out = new Float64Array(x.data.length);
  for (let i = 0; i < x.data.length; i++) {
    const g = grouping.groupOf(i);
    const a = grouping.affineOf(i);
    const normalized = (x.data[i] - mean[g]) / Math.sqrt(variance[g] + eps);
    out[i] = normalized * (weight ? weight.data[a] : 1) + (bias ? bias.data[a] : 0);
  }
  return { shape: [...x.shape], data: out };
}

/** Elements per (n, c) of a [N, C, ...spatial] shape. */
function spatialSize(shape: readonly number[]): number {
  return shape.slice(2).reduce((n, d) => n * d, 1);
}

/** instance_norm: statistics per (n, c) over the spatial axes. */
export function instanceNormRef(
  x: NDArray,
  weight: NDArray | null,
  bias: NDArray | null,
  eps = 1e-5,
): NDArray {
  const [n, c] = x.shape;
  const spatial = spatialSize(x.shape);
  return normalize(
    x,
    {
      groups: n * c,
      groupOf: (i) => Math.floor(i / spatial),
      affineOf: (i) => Math.floor(i / spatial) % c,
    },
    weight,
    bias,
    eps,
  );
}

/** group_norm: statistics per (n, group) over C / groups channels and space. */
export function groupNormRef(
  x: NDArray,
  groups: number,
  weight: NDArray | null,
  bias: NDArray | null,
  eps = 1e-5,
): NDArray {
  const [n, c] = x.shape;
  const spatial = spatialSize(x.shape);
  const groupSize = (c / groups) * spatial;
  return normalize(
    x,
    {
      groups: n * groups,
      groupOf: (i) => Math.floor(i / groupSize),
      affineOf: (i) => Math.floor(i / spatial) % c,
    },
    weight,
    bias,
    eps,
  );
}

/**
 * layer_norm: statistics over the last `normalizedSize` elements (the
 * product of the normalised trailing dimensions); weight and bias have
 * that many elements.
 */
export function layerNormRef(
  x: NDArray,
  normalizedSize: number,
  weight: NDArray | null,
  bias: NDArray | null,
  eps = 1e-5,
): NDArray {
  return normalize(
    x,
    {
      groups: x.data.length / normalizedSize,
      groupOf: (i) => Math.floor(i / normalizedSize),
      affineOf: (i) => i % normalizedSize,
    },
    weight,
    bias,
    eps,
  );
}

/**
 * SAM's LayerNorm2d generalised to [N, C, ...spatial]: statistics per
 * (n, position) over the C channels; weight and bias are [C].
 */
export function layerNormChannelsRef(
  x: NDArray,
  weight: NDArray | null,
  bias: NDArray | null,
  eps = 1e-6,
): NDArray {
  const [n, c] = x.shape;
  const spatial = spatialSize(x.shape);
  return normalize(
    x,
    {
      groups: n * spatial,
      groupOf: (i) => Math.floor(i / (c * spatial)) * spatial + (i % spatial),
      affineOf: (i) => Math.floor(i / spatial) % c,
    },
    weight,
    bias,
    eps,
  );
}

/** Grouping of batch normalisation: one group per channel over N and space. */
function channelGrouping(shape: readonly number[]): Grouping {
  const c = shape[1];
  const spatial = spatialSize(shape);
  const channelOf = (i: number) => Math.floor(i / spatial) % c;
  return { groups: c, groupOf: channelOf, affineOf: channelOf };
}

/** Per-channel mean and biased variance over N and the spatial axes. */
export function batchStatsRef(x: NDArray): { mean: NDArray; variance: NDArray } {
  const c = x.shape[1];
  const { mean, variance } = groupMoments(x, channelGrouping(x.shape));
  return {
    mean: { shape: [c], data: mean },
    variance: { shape: [c], data: variance },
  };
}

export interface BatchNormRefOptions {
  training: boolean;
  momentum: number;
  eps: number;
}

/**
 * batch_norm. In training mode the output uses the batch's biased
 * variance, and the returned running statistics are
 * (1 - momentum) * running + momentum * batch, where the batch variance is
 * the unbiased one (times count / (count - 1)). In evaluation mode the
 * output uses the running statistics, which are returned unchanged.
 */
export function batchNormRef(
  x: NDArray,
  runningMean: NDArray | null,
  runningVar: NDArray | null,
  weight: NDArray | null,
  bias: NDArray | null,
  options: BatchNormRefOptions,
): { out: NDArray; runningMean: NDArray | null; runningVar: NDArray | null } {
  const grouping = channelGrouping(x.shape);
  if (options.training) {
    const out = normalize(x, grouping, weight, bias, options.eps);
    const { mean, variance, count } = groupMoments(x, grouping);
    const m = options.momentum;
    const update = (running: NDArray | null, batch: (c: number) => number) =>
      running && {
        shape: [...running.shape],
        data: running.data.map((r, c) => (1 - m) * r + m * batch(c)),
      };
    return {
      out,
      runningMean: update(runningMean, (c) => mean[c]),
      runningVar: update(runningVar, (c) => (variance[c] * count[c]) / (count[c] - 1)),
    };
  }
  if (!runningMean || !runningVar) {
    throw new Error('batchNormRef: evaluation mode needs running statistics');
  }
  const out = new Float64Array(x.data.length);
  for (let i = 0; i < out.length; i++) {
    const c = grouping.groupOf(i);
    const normalized =
      (x.data[i] - runningMean.data[c]) / Math.sqrt(runningVar.data[c] + options.eps);
    out[i] = normalized * (weight ? weight.data[c] : 1) + (bias ? bias.data[c] : 0);
  }
  return { out: { shape: [...x.shape], data: out }, runningMean, runningVar };
}
