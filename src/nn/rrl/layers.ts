// The CNN blocks of the RRL-MedSAM networks: a normalisation layer over
// volumes and the double 3x3x3 convolution block of every encoder and
// decoder level (conv, norm, LeakyReLU, once or twice).
//
// Layout: volumes [N, C, D, H, W].

import { leakyRelu } from '../../ops/activation.js';
import { ones, zeros } from '../../ops/creation.js';
import { groupNorm, instanceNorm } from '../../ops/norm.js';
import { tidy, type Tensor } from '../../tensor.js';
import { Conv3d } from '../conv.js';
import type { Random } from '../../random.js';
import { Module } from '../module.js';
import type { NormKind, RrlModelConfig } from './config.js';

/** The config fields that shape a ConvBlock. */
export type BlockConfig = Pick<
  RrlModelConfig,
  'norm' | 'normGroups' | 'normAffine' | 'leakySlope'
>;

/**
 * Instance or group normalisation of [N, C, D, H, W] with an optional
 * per-channel scale (ones) and shift (zeros), like torch.nn.InstanceNorm3d
 * (affine=True) and torch.nn.GroupNorm. Batch statistics only: instance
 * norm keeps no running averages, as PyTorch's default
 * track_running_stats=False.
 */
export class Norm3d extends Module {
  readonly weight: Tensor | null = null;
  readonly bias: Tensor | null = null;

  constructor(
    readonly kind: Exclude<NormKind, 'none'>,
    readonly channels: number,
    readonly groups: number,
    affine: boolean,
  ) {
    super();
    if (affine) {
      this.weight = this.param('weight', ones([channels]));
      this.bias = this.param('bias', zeros([channels]));
    }
  }

  forward(x: Tensor): Tensor {
    const options = { weight: this.weight, bias: this.bias, eps: 1e-5 };
    if (this.kind === 'instance') return instanceNorm(x, options);
    return groupNorm(x, this.groups, options);
  }
}

/**
 * Two 3x3x3 convolutions (padding 1), each followed by normalisation and
 * LeakyReLU. The first convolution maps inChannels to outChannels with
 * `stride`; the second keeps the width and the grid. Parameters are named
 * conv1, norm1, conv2, norm2. With `convs` 1 the block ends after norm1.
 */
export class ConvBlock extends Module {
  readonly conv1: Conv3d;
  readonly norm1: Norm3d | null = null;
  readonly conv2: Conv3d | null = null;
  readonly norm2: Norm3d | null = null;
  private readonly slope: number;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    config: BlockConfig,
    random: Random,
    stride = 1,
    convs: 1 | 2 = 2,
  ) {
    super();
    this.slope = config.leakySlope;
    const { norm: kind, normGroups, normAffine } = config;
    const norm = () =>
      kind === 'none'
        ? null
        : new Norm3d(kind, outChannels, normGroups, normAffine);
    const options = { stride, padding: 1, seed: random };
    this.conv1 = this.module(
      'conv1',
      new Conv3d(inChannels, outChannels, 3, options),
    );
    const norm1 = norm();
    if (norm1) this.norm1 = this.module('norm1', norm1);
    if (convs === 1) return;
    this.conv2 = this.module(
      'conv2',
      new Conv3d(outChannels, outChannels, 3, { padding: 1, seed: random }),
    );
    const norm2 = norm();
    if (norm2) this.norm2 = this.module('norm2', norm2);
  }

  forward(x: Tensor): Tensor {
    return tidy(() => {
      let y = this.conv1.forward(x);
      if (this.norm1) y = this.norm1.forward(y);
      y = leakyRelu(y, this.slope);
      if (!this.conv2) return y;
      y = this.conv2.forward(y);
      if (this.norm2) y = this.norm2.forward(y);
      return leakyRelu(y, this.slope);
    });
  }
}
