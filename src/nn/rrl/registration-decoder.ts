// The U-Net style upward path shared by the decoders, and the registration
// decoder that turns the atlas's and the target's feature pyramids into a
// displacement field.
//
// Layout: pyramids as in encoder.ts; the flow is [N, 3, D, H, W] in voxels
// along (D, H, W), the convention of warp().

import { concat } from '../../ops/layout.js';
import { avgPool3d } from '../../ops/pool.js';
import { scale } from '../../ops/unary.js';
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

/** Widths and depth of an UpPath other than the config's decoder. */
export interface UpPathShape {
  /** Output channels of levels 0 to 3 (entries below lastLevel unused). */
  widths: readonly number[];
  /** 3x3x3 convolutions per level (1 or 2). */
  convs: 1 | 2;
  /** The finest level built: 0 ends at full resolution, 1 at half. */
  lastLevel: number;
  /** Channels concatenated to the skip of lastLevel by the caller. */
  extraSkipChannels: number;
}

/**
 * Levels 3 to `lastLevel` (default 0) of a U-Net decoder: at each level
 * the coarser features are upsampled by 2 (trilinear, align_corners
 * false), concatenated with that level's skip features along the
 * channels, and passed through a ConvBlock. Blocks are named
 * `levels.<i>`, where block i produces level lastLevel + i.
 */
export class UpPath extends Module {
  readonly levels: ModuleList<ConvBlock>;
  readonly lastLevel: number;

  /**
   * `bottleneckChannels` enter at level 4; `skipChannels[l]` join at level
   * l; level l outputs shape.widths[l] channels (by default the config's
   * decoderChannels, with decoderConvs convolutions per level).
   */
  constructor(
    bottleneckChannels: number,
    skipChannels: readonly number[],
    config: RrlModelConfig,
    random: Random,
    shape: Partial<UpPathShape> = {},
  ) {
    super();
    const widths = shape.widths ?? config.decoderChannels;
    const convs = shape.convs ?? config.decoderConvs;
    this.lastLevel = shape.lastLevel ?? 0;
    const blocks: ConvBlock[] = new Array<ConvBlock>(4 - this.lastLevel);
    let previous = bottleneckChannels;
    for (let level = 3; level >= this.lastLevel; level--) {
      const extra = level === this.lastLevel ? (shape.extraSkipChannels ?? 0) : 0;
      const inChannels = previous + skipChannels[level] + extra;
      blocks[level - this.lastLevel] = new ConvBlock(
        inChannels,
        widths[level],
        config,
        random,
        1,
        convs,
      );
      previous = widths[level];
    }
    this.levels = this.moduleList('levels', blocks);
  }

  /**
   * Runs the path from `bottleneck` with skips[lastLevel..3]; returns the
   * features of lastLevel.
   */
  forward(bottleneck: Tensor, skips: readonly Tensor[]): Tensor {
    return tidy(() => {
      let x = bottleneck;
      for (let level = 3; level >= this.lastLevel; level--) {
        const up = upsample3d(x, { scale: 2, mode: 'linear' });
        x = this.levels.at(level - this.lastLevel).forward(concat([up, skips[level]], 1));
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
 * level by level and runs the U-Net upward path, with its own widths
 * (config.registrationChannels, registrationConvs). With
 * registrationImages the two images themselves join the finest level's
 * skip (average-pooled to it), so its convolutions compare the raw
 * intensities, as VoxelMorph's first layer does. A 3x3x3 convolution to 3
 * channels ends it at config.flowLevel: at level 1 the field is computed
 * on the half-resolution grid and upsampled trilinearly (its voxel
 * displacements doubled) to the full grid. The flow layer starts like
 * VoxelMorph's (weights Normal(0, flowInitStd), bias 0), so the first
 * fields are near the identity. With integrationSteps > 0 its output is a
 * stationary velocity field, integrated by scaling and squaring on the
 * grid of flowLevel.
 */
export class RegistrationDecoder extends Module {
  readonly up: UpPath;
  readonly flow: Conv3d;
  readonly integrationSteps: number;
  readonly flowLevel: number;
  readonly images: boolean;

  constructor(config: RrlModelConfig, seed?: RandomSource) {
    super();
    const random = resolveRandom(seed);
    const pairs = config.encoderChannels.map((width) => 2 * width);
    const shape = registrationShape(config);
    this.flowLevel = shape.lastLevel;
    this.images = config.registrationImages ?? false;
    this.up = this.module(
      'up',
      new UpPath(pairs[4], pairs, config, random, {
        ...shape,
        extraSkipChannels: this.images ? 2 * config.inChannels : 0,
      }),
    );
    const width = shape.widths[shape.lastLevel];
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
   * target: warp(atlasImage, flow) is aligned with the target. The images
   * are needed when the config has registrationImages.
   */
  forward(
    atlas: FeaturePyramid,
    target: FeaturePyramid,
    images?: { atlas: Tensor; target: Tensor },
  ): Tensor {
    checkPyramids('RegistrationDecoder', atlas, target);
    if (this.images && !images) {
      throw new Error(
        'RegistrationDecoder: the atlas and target images are missing; this ' +
          'config has registrationImages, so pass them as the third argument',
      );
    }
    return tidy(() => {
      const joined = atlas.map((a, level) => concat([a, target[level]], 1));
      const last = this.flowLevel;
      if (this.images && images) {
        let pair = concat([images.atlas, images.target], 1);
        for (let level = 0; level < last; level++) pair = avgPool3d(pair, { kernelSize: 2 });
        joined[last] = concat([joined[last], pair], 1);
      }
      const x = this.up.forward(joined[4], joined);
      let field = this.flow.forward(x);
      if (this.integrationSteps > 0) {
        field = integrateVelocity(field, this.integrationSteps);
      }
      for (let level = last; level > 0; level--) {
        field = scale(upsample3d(field, { scale: 2, mode: 'linear' }), 2);
      }
      return field;
    });
  }
}

/** Returns the UpPath shape of a config's registration decoder. */
export function registrationShape(config: RrlModelConfig): Omit<UpPathShape, 'extraSkipChannels'> {
  return {
    widths: config.registrationChannels ?? config.decoderChannels,
    convs: config.registrationConvs ?? config.decoderConvs,
    lastLevel: config.flowLevel ?? 0,
  };
}
