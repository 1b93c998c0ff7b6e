// nn.Linear: y = x W^T + b over the last axis, laid out like PyTorch's
// nn.Linear (weight [out, in], bias [out]) so checkpoints load unchanged.

import { add } from '../ops/elementwise.js';
import { matmul } from '../ops/matmul.js';
import { formatShape, tidy, type Tensor } from '../tensor.js';
import {
  defaultBias,
  defaultWeight,
  resolveRandom,
  type RandomSource,
} from './init.js';
import { Module } from './module.js';

export interface LinearOptions {
  /** Learn an additive bias (default true). */
  bias?: boolean;
  /**
   * Generator for the initial values: a seed, a Random shared by the
   * layers of a network, or the default stream of init.manualSeed().
   */
  seed?: RandomSource;
}

/**
 * Linear layer over the last axis: input [..., inFeatures] to output
 * [..., outFeatures]. Initialised like PyTorch: weight and bias uniform in
 * +-1/sqrt(inFeatures), drawn weight first from the same generator.
 */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: LinearOptions = {},
  ) {
    super();
    for (const [name, value] of [
      ['inFeatures', inFeatures],
      ['outFeatures', outFeatures],
    ] as const) {
      if (!Number.isInteger(value) || value < 0) {
        throw new RangeError(
          `Linear: ${name} must be a non-negative integer, got ${value}`,
        );
      }
    }
    const random = resolveRandom(options.seed);
    const shape = [outFeatures, inFeatures];
    this.weight = this.param('weight', defaultWeight(shape, random));
    this.bias = null;
    if (options.bias !== false) {
      const bias = defaultBias([outFeatures], inFeatures, random);
      this.bias = this.param('bias', bias);
    }
  }

  /** Computes x W^T + b for x of shape [..., inFeatures]. */
  forward(x: Tensor): Tensor {
    if (x.rank === 0 || x.shape[x.rank - 1] !== this.inFeatures) {
      throw new RangeError(
        `Linear: input ${formatShape(x.shape)} must have ` +
          `${this.inFeatures} features in its last axis (weight ` +
          `${formatShape(this.weight.shape)})`,
      );
    }
    const bias = this.bias;
    return tidy(() => {
      const product = matmul(x, this.weight, { transposeB: true });
      return bias ? add(product, bias) : product;
    });
  }
}
