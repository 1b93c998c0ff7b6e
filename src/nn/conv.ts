// nn.Conv2d and nn.Conv3d: convolution layers laid out like PyTorch's
// (weight [out, in, ...kernel], bias [out]) so checkpoints load unchanged.
// Both run on the conv3d op. Conv2d views its input [N, C, H, W] as
// [N, C, 1, H, W] and its weight as [out, in, 1, kH, kW], which moves no
// data.

import { conv3d, type Size3 } from '../ops/conv.js';
import { reshape } from '../ops/view.js';
import { formatShape, tidy, type Tensor } from '../tensor.js';
import {
  computeFans,
  defaultBias,
  defaultWeight,
  resolveRandom,
  type RandomSource,
} from './init.js';
import { Module } from './module.js';

export type Size2 = number | readonly [number, number];

export interface ConvOptions<Size> {
  stride?: Size;
  /** Zero padding on both sides of each spatial axis (default 0). */
  padding?: Size;
  dilation?: Size;
  /** Learn an additive bias (default true). */
  bias?: boolean;
  /** Generator for the initial values (see LinearOptions.seed). */
  seed?: RandomSource;
}

function sizes(
  op: string,
  name: string,
  value: number | readonly number[] | undefined,
  rank: number,
  fallback: number,
): number[] {
  if (value === undefined) return new Array<number>(rank).fill(fallback);
  if (typeof value === 'number') return new Array<number>(rank).fill(value);
  if (value.length !== rank) {
    throw new RangeError(
      `${op}: ${name} must be one integer or ${rank} of them, got ` +
        formatShape(value),
    );
  }
  return [...value];
}

function checkChannels(op: string, name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(
      `${op}: ${name} must be a positive integer, got ${value}`,
    );
  }
}

/**
 * Shared body of Conv2d and Conv3d: parameters, PyTorch's default
 * initialisation and the call of conv3d on 5D views.
 */
abstract class ConvNd extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly kernelSize: readonly number[];
  readonly stride: readonly number[];
  readonly padding: readonly number[];
  readonly dilation: readonly number[];

  constructor(
    private readonly op: string,
    private readonly spatialRank: number,
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: number | readonly number[],
    options: ConvOptions<number | readonly number[]>,
  ) {
    super();
    checkChannels(op, 'inChannels', inChannels);
    checkChannels(op, 'outChannels', outChannels);
    const rank = spatialRank;
    this.kernelSize = sizes(op, 'kernelSize', kernelSize, rank, 1);
    this.stride = sizes(op, 'stride', options.stride, rank, 1);
    this.padding = sizes(op, 'padding', options.padding, rank, 0);
    this.dilation = sizes(op, 'dilation', options.dilation, rank, 1);
    const random = resolveRandom(options.seed);
    const shape = [outChannels, inChannels, ...this.kernelSize];
    this.weight = this.param('weight', defaultWeight(shape, random));
    this.bias = null;
    if (options.bias !== false) {
      const { fanIn } = computeFans(shape);
      const bias = defaultBias([outChannels], fanIn, random);
      this.bias = this.param('bias', bias);
    }
  }

  override get typeName(): string {
    return this.op;
  }

  /** Pads a 2D size to conv3d's three axes with a leading depth entry. */
  private toSize3(values: readonly number[], depth: number): Size3 {
    if (values.length === 3) return values as [number, number, number];
    return [depth, values[0], values[1]];
  }

  forward(x: Tensor): Tensor {
    const rank = this.spatialRank + 2;
    if (x.rank !== rank || x.shape[1] !== this.inChannels) {
      const layout = rank === 4 ? '[N, C, H, W]' : '[N, C, D, H, W]';
      throw new RangeError(
        `${this.op}: input ${formatShape(x.shape)} must be ${layout} with ` +
          `C = ${this.inChannels} (weight ${formatShape(this.weight.shape)})`,
      );
    }
    const options = {
      stride: this.toSize3(this.stride, 1),
      padding: this.toSize3(this.padding, 0),
      dilation: this.toSize3(this.dilation, 1),
    };
    if (rank === 5) return conv3d(x, this.weight, this.bias, options);
    return tidy(() => {
      const [n, c, h, w] = x.shape;
      const [out, inChannels, kh, kw] = this.weight.shape;
      const x5 = reshape(x, [n, c, 1, h, w]);
      const weight5 = reshape(this.weight, [out, inChannels, 1, kh, kw]);
      const y = conv3d(x5, weight5, this.bias, options);
      const [, , , outH, outW] = y.shape;
      return reshape(y, [n, out, outH, outW]);
    });
  }
}

/**
 * 2D convolution layer like torch.nn.Conv2d with zero padding and
 * groups = 1: input [N, inChannels, H, W], weight
 * [outChannels, inChannels, kH, kW], bias [outChannels]. Initialised like
 * PyTorch (Kaiming uniform with a = sqrt(5), bias in +-1/sqrt(fanIn)).
 */
export class Conv2d extends ConvNd {
  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: Size2,
    options: ConvOptions<Size2> = {},
  ) {
    super('Conv2d', 2, inChannels, outChannels, kernelSize, options);
  }
}

/**
 * 3D convolution layer like torch.nn.Conv3d with zero padding and
 * groups = 1: input [N, inChannels, D, H, W], weight
 * [outChannels, inChannels, kD, kH, kW], bias [outChannels].
 */
export class Conv3d extends ConvNd {
  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: Size3,
    options: ConvOptions<Size3> = {},
  ) {
    super('Conv3d', 3, inChannels, outChannels, kernelSize, options);
  }
}
