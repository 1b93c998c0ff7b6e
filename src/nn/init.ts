// Parameter initialisers with PyTorch's formulas (torch.nn.init, 1.13):
// fan computation, gains, Kaiming, Xavier, truncated normal, and the
// default initialisation of linear and convolution layers.
//
// Values are drawn on the CPU from a seeded Random (src/random.ts) and
// uploaded, so a seed gives the same tensor on every device.
// NOTE: the generator is not PyTorch's Mersenne Twister, so a seed gives
// numbers from the same distribution as torch.nn.init, not the same
// numbers. Compare initialisations by their statistics, not their values.

import { tensor, formatShape, type Tensor } from '../tensor.js';
import { Random } from '../random.js';

export { zeros, ones, full } from '../ops/creation.js';

/**
 * Generator argument of the initialisers: a Random, a seed, or undefined
 * for the default stream.
 */
export type RandomSource = Random | number | undefined;

let defaultRandom = new Random(0);

/**
 * Restarts the default generator that initialisers use when given no
 * Random or seed, like torch.manual_seed. Layers built in the same order
 * after the same manualSeed get the same values.
 */
export function manualSeed(seed: number): void {
  defaultRandom = new Random(seed);
}

/**
 * Returns the generator for `source`: itself, a new one from a seed, or
 * the default.
 */
export function resolveRandom(source: RandomSource): Random {
  if (source instanceof Random) return source;
  if (typeof source === 'number') return new Random(source);
  return defaultRandom;
}

export interface Fans {
  fanIn: number;
  fanOut: number;
}

/**
 * Fan-in and fan-out of a weight of rank 2 or more, as PyTorch computes
 * them: the weight is [out, in, ...kernel], and both fans are multiplied
 * by the kernel's element count. A conv3d weight [Cout, Cin, kD, kH, kW]
 * has fanIn = Cin * kD * kH * kW and fanOut = Cout * kD * kH * kW.
 */
export function computeFans(shape: readonly number[]): Fans {
  if (shape.length < 2) {
    throw new RangeError(
      `computeFans: shape ${formatShape(shape)} has rank ${shape.length}; ` +
        'fans are defined for weights of rank 2 or more',
    );
  }
  let receptiveField = 1;
  for (const dim of shape.slice(2)) receptiveField *= dim;
  return {
    fanIn: shape[1] * receptiveField,
    fanOut: shape[0] * receptiveField,
  };
}

export type Nonlinearity =
  | 'linear'
  | 'conv1d'
  | 'conv2d'
  | 'conv3d'
  | 'sigmoid'
  | 'tanh'
  | 'relu'
  | 'leaky_relu'
  | 'selu';

/**
 * Returns the recommended gain for a nonlinearity
 * (torch.nn.init.calculate_gain). `param` is the negative slope of
 * leaky_relu (default 0.01).
 */
export function calculateGain(
  nonlinearity: Nonlinearity,
  param?: number,
): number {
  switch (nonlinearity) {
    case 'linear':
    case 'conv1d':
    case 'conv2d':
    case 'conv3d':
    case 'sigmoid':
      return 1;
    case 'tanh':
      return 5 / 3;
    case 'relu':
      return Math.SQRT2;
    case 'leaky_relu': {
      const slope = param ?? 0.01;
      return Math.sqrt(2 / (1 + slope * slope));
    }
    case 'selu':
      return 3 / 4;
    default:
      throw new RangeError(
        `calculateGain: unknown nonlinearity "${String(nonlinearity)}"`,
      );
  }
}

function sample(
  shape: readonly number[],
  draw: () => number,
): Tensor {
  const count = shape.reduce((n, d) => n * d, 1);
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) data[i] = draw();
  return tensor(data, shape);
}

/** Values uniform in [low, high). */
export function uniform(
  shape: readonly number[],
  low: number,
  high: number,
  random?: RandomSource,
): Tensor {
  if (!(low <= high)) {
    throw new RangeError(`uniform: low ${low} must not exceed high ${high}`);
  }
  const generator = resolveRandom(random);
  return sample(shape, () => low + (high - low) * generator.uniform());
}

/** Normal values with the given mean and standard deviation. */
export function normal(
  shape: readonly number[],
  mean: number,
  std: number,
  random?: RandomSource,
): Tensor {
  if (!(std >= 0)) throw new RangeError(`normal: std ${std} must be >= 0`);
  const generator = resolveRandom(random);
  return sample(shape, () => mean + std * generator.normal());
}

export interface TruncNormalOptions {
  mean?: number;
  std?: number;
  /** Lower bound of the values (default -2, in value units like PyTorch). */
  low?: number;
  /** Upper bound (default 2). */
  high?: number;
}

// Draws per element before truncNormal gives up on a bound pair.
const MAX_TRUNC_NORMAL_DRAWS = 100_000;

/**
 * Normal values redrawn until they lie in [low, high]
 * (torch.nn.init.trunc_normal_). Bounds are values, not multiples of std:
 * with std 0.02 and the default bounds nearly nothing is cut.
 * NOTE: rejection sampling is exact but slow when [low, high] contains
 * little of the distribution. It throws when an element needs more than
 * 100,000 draws, which is likely once the interval has under about 0.01%
 * of the probability mass.
 */
export function truncNormal(
  shape: readonly number[],
  options: TruncNormalOptions = {},
  random?: RandomSource,
): Tensor {
  const mean = options.mean ?? 0;
  const std = options.std ?? 1;
  const low = options.low ?? -2;
  const high = options.high ?? 2;
  if (!(low < high) || !(std > 0)) {
    throw new RangeError(
      `truncNormal: needs low < high and std > 0, got low ${low}, ` +
        `high ${high}, std ${std}`,
    );
  }
  const generator = resolveRandom(random);
  return sample(shape, () => {
    for (let draw = 0; draw < MAX_TRUNC_NORMAL_DRAWS; draw++) {
      const value = mean + std * generator.normal();
      if (value >= low && value <= high) return value;
    }
    throw new RangeError(
      `truncNormal: no value in [${low}, ${high}] after ` +
        `${MAX_TRUNC_NORMAL_DRAWS} draws from N(${mean}, ${std}^2); the ` +
        'interval holds too little of the distribution',
    );
  });
}

export interface KaimingOptions {
  /** Negative slope of the leaky ReLU that follows (default 0). */
  a?: number;
  /** Preserve the variance of the forward ('fanIn') or backward pass. */
  mode?: 'fanIn' | 'fanOut';
  nonlinearity?: Nonlinearity;
}

function kaimingStd(shape: readonly number[], options: KaimingOptions): number {
  const fans = computeFans(shape);
  const fan = (options.mode ?? 'fanIn') === 'fanIn' ? fans.fanIn : fans.fanOut;
  // A fan of 0 means the weight has no elements: nothing to draw.
  if (fan === 0) return 0;
  const nonlinearity = options.nonlinearity ?? 'leaky_relu';
  const gain = calculateGain(nonlinearity, options.a ?? 0);
  return gain / Math.sqrt(fan);
}

/**
 * He uniform: U(-bound, bound) with bound = gain * sqrt(3 / fan)
 * (torch.nn.init.kaiming_uniform_). With a = sqrt(5), PyTorch's default for
 * linear and conv weights, bound = 1 / sqrt(fanIn).
 */
export function kaimingUniform(
  shape: readonly number[],
  options: KaimingOptions = {},
  random?: RandomSource,
): Tensor {
  const bound = Math.sqrt(3) * kaimingStd(shape, options);
  return uniform(shape, -bound, bound, random);
}

/** He normal: N(0, (gain / sqrt(fan))^2) (torch.nn.init.kaiming_normal_). */
export function kaimingNormal(
  shape: readonly number[],
  options: KaimingOptions = {},
  random?: RandomSource,
): Tensor {
  const std = kaimingStd(shape, options);
  return normal(shape, 0, std, random);
}

/**
 * Glorot uniform: U(-bound, bound) with
 * bound = gain * sqrt(6 / (fanIn + fanOut)) (torch.nn.init.xavier_uniform_).
 */
export function xavierUniform(
  shape: readonly number[],
  gain = 1,
  random?: RandomSource,
): Tensor {
  const { fanIn, fanOut } = computeFans(shape);
  const bound = gain * Math.sqrt(6 / (fanIn + fanOut));
  return uniform(shape, -bound, bound, random);
}

/** Glorot normal: N(0, gain^2 * 2 / (fanIn + fanOut)). */
export function xavierNormal(
  shape: readonly number[],
  gain = 1,
  random?: RandomSource,
): Tensor {
  const { fanIn, fanOut } = computeFans(shape);
  return normal(shape, 0, gain * Math.sqrt(2 / (fanIn + fanOut)), random);
}

/**
 * PyTorch's default weight of nn.Linear and nn.ConvNd: Kaiming uniform with
 * a = sqrt(5), that is U(-1/sqrt(fanIn), 1/sqrt(fanIn)).
 */
export function defaultWeight(
  shape: readonly number[],
  random?: RandomSource,
): Tensor {
  return kaimingUniform(shape, { a: Math.sqrt(5) }, random);
}

/**
 * PyTorch's default bias of nn.Linear and nn.ConvNd:
 * U(-1/sqrt(fanIn), 1/sqrt(fanIn)) with the weight's fanIn, and zeros when
 * fanIn is 0.
 */
export function defaultBias(
  shape: readonly number[],
  fanIn: number,
  random?: RandomSource,
): Tensor {
  const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
  return uniform(shape, -bound, bound, random);
}
