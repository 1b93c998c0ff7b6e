// The U-Net style upward path shared by the decoders, and the registration
// decoder that turns the atlas's and the target's feature pyramids into a
// displacement field.
//
// Layout: pyramids as in encoder.ts; the flow is [N, 3, D, H, W] in voxels
// along (D, H, W), the convention of warp().

import { concat } from '../../ops/layout.js';
import { upsample3d } from '../../ops/upsample.js';
import { integrateVelocity } from '../../ops/warp.js';
import { normal, zeros } from '../init.js';
import { formatShape, tidy, type Tensor } from '../../tensor.js';
import type { Random } from '../../random.js';
import { resolveRandom, type RandomSource } from '../init.js';
import { copyInto } from '../copy.js';
import { Conv3d } from '../conv.js';
import { Module, type ModuleList } from '../module.js';
import type { RrlModelConfig } from './config.js';
import type { FeaturePyramid } from './encoder.js';
import { ConvBlock } from './layers.js';

/**
 * Levels 3 to 0 of a U-Net decoder: at each level the coarser features are
 * upsampled by 2 (trilinear, align_corners false), concatenated with that
 * level's skip features along the channels, and passed through a
 * ConvBlock. Blocks are named `levels.<l>` by the level they produce.
 */
export class UpPath extends Module {
  readonly levels: ModuleList<ConvBlock>;

  /**
   * `bottleneckChannels` enter at level 4; `skipChannels[l]` join at level
   * l; level l outputs config.decoderChannels[l] channels.
   */
  constructor(
    bottleneckChannels: number,
    skipChannels: readonly number[],
    config: RrlModelConfig,
    random: Random,
  ) {
    super();
    const widths = config.decoderChannels;
    const blocks: ConvBlock[] = new Array<ConvBlock>(4);
    let previous = bottleneckChannels;
    for (let level = 3; level >= 0; level--) {
      const inChannels = previous + skipChannels[level];
      blocks[level] = new ConvBlock(
        inChannels,
        widths[level],
        config,
        random,
        1,
        config.decoderConvs,
      );
      previous = widths[level];
    }
    this.levels = this.moduleList('levels', blocks);
  }

  /** Runs the path from `bottleneck` with skips[0..3]; returns level 0. */
  forward(bottleneck: Tensor, skips: readonly Tensor[]): Tensor {
    return tidy(() => {
      let x = bottleneck;
      for (let level = 3; level >= 0; level--) {
        const up = upsample3d(x, { scale: 2, mode: 'linear' });
        x = this.levels.at(level).forward(concat([up, skips[level]], 1));
      }
      return x;
    });
  }
}

/** Throws unless both pyramids have five levels of the same shapes. */
export function checkPyramids(
  op: string,
  atlas: FeaturePyramid,
  target: FeaturePyramid,
): void {
  const same =
    atlas.length === 5 &&
    target.length === 5 &&
    atlas.every(
      (t, i) =>
        t.rank === target[i].rank &&
        t.shape.every((size, axis) => size === target[i].shape[axis]),
    );
  if (!same) {
    const describe = (pyramid: FeaturePyramid) =>
      pyramid.map((t) => formatShape(t.shape)).join(' ');
    throw new RangeError(
      `${op}: the atlas pyramid (${describe(atlas)}) and the target ` +
        `pyramid (${describe(target)}) must have 5 levels of equal shapes`,
    );
  }
}

/**
 * Registration decoder: concatenates the atlas's and the target's features
 * level by level and runs the U-Net upward path. A 3x3x3 convolution to 3
 * channels at full resolution ends it. That layer starts like VoxelMorph's
 * flow layer (weights Normal(0, flowInitStd), bias 0), so the first fields
 * are near the identity. With integrationSteps > 0 its output is a
 * stationary velocity field, integrated by scaling and squaring.
 */
export class RegistrationDecoder extends Module {
  readonly up: UpPath;
  readonly flow: Conv3d;
  readonly integrationSteps: number;

  constructor(config: RrlModelConfig, seed?: RandomSource) {
    super();
    const random = resolveRandom(seed);
    const pairs = config.encoderChannels.map((width) => 2 * width);
    this.up = this.module('up', new UpPath(pairs[4], pairs, config, random));
    const width = config.decoderChannels[0];
    this.flow = this.module(
      'flow',
      new Conv3d(width, 3, 3, { padding: 1, seed: random }),
    );
    const weight = normal(this.flow.weight.shape, 0, config.flowInitStd, random);
    const bias = zeros([3]);
    copyInto('RegistrationDecoder', this.flow.weight, weight);
    copyInto('RegistrationDecoder', this.flow.bias!, bias);
    weight.dispose();
    bias.dispose();
    this.integrationSteps = config.integrationSteps;
  }

  /**
   * Returns the flow [N, 3, D, H, W] (voxels) that warps the atlas onto the
   * target: warp(atlasImage, flow) is aligned with the target.
   */
  forward(atlas: FeaturePyramid, target: FeaturePyramid): Tensor {
    checkPyramids('RegistrationDecoder', atlas, target);
    return tidy(() => {
      const joined = atlas.map((a, level) => concat([a, target[level]], 1));
      const x = this.up.forward(joined[4], joined.slice(0, 4));
      const field = this.flow.forward(x);
      if (this.integrationSteps === 0) return field;
      return integrateVelocity(field, this.integrationSteps);
    });
  }
}
