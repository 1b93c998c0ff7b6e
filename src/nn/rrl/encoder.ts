// Encoder3d: the lightweight 3D CNN encoder of both RRL-MedSAM branches
// (f_lie and f_med share this architecture, so mutual EMA can pair their
// parameters one to one).
//
// Layout: input [N, inChannels, D, H, W] with D, H, W multiples of 16;
// level l of the pyramid is [N, encoderChannels[l], D / 2^l, H / 2^l,
// W / 2^l] for l = 0..4.

import { formatShape, tidy, type Tensor } from '../../tensor.js';
import { resolveRandom, type RandomSource } from '../init.js';
import { Module, type ModuleList } from '../module.js';
import type { RrlModelConfig } from './config.js';
import { ConvBlock } from './layers.js';

/** Feature maps of the five levels, finest (full resolution) first. */
export type FeaturePyramid = readonly Tensor[];

/** Downsampling factor between level 0 and the bottleneck (level 4). */
export const BOTTLENECK_FACTOR = 16;

/**
 * Throws unless `x` is [N, channels, D, H, W] with D, H and W multiples
 * of 16, naming `op` and the shape.
 */
export function checkVolumeInput(
  op: string,
  name: string,
  x: Tensor,
  channels: number,
): void {
  if (x.rank !== 5 || x.shape[1] !== channels) {
    throw new RangeError(
      `${op}: ${name} ${formatShape(x.shape)} must be [N, ${channels}, D, H, W]`,
    );
  }
  const spatial = x.shape.slice(2);
  if (spatial.some((size) => size % BOTTLENECK_FACTOR !== 0 || size === 0)) {
    throw new RangeError(
      `${op}: ${name} ${formatShape(x.shape)} has spatial size ` +
        `${formatShape(spatial)}; D, H and W must be positive multiples of ` +
        `${BOTTLENECK_FACTOR} because the encoder halves the grid 4 times ` +
        '(crop or pad the volume)',
    );
  }
}

/**
 * Five resolution levels of two 3x3x3 convolutions, each followed by
 * normalisation and LeakyReLU. The first convolution of levels 1 to 4 has
 * stride 2. Siamese use: calling forward on the atlas and on the target
 * with the same module encodes them separately with shared weights.
 * Parameters are named `levels.<l>.conv1.weight` and so on.
 */
export class Encoder3d extends Module {
  readonly levels: ModuleList<ConvBlock>;
  readonly channels: readonly number[];

  constructor(config: RrlModelConfig, seed?: RandomSource) {
    super();
    const random = resolveRandom(seed);
    this.channels = [...config.encoderChannels];
    let previous = config.inChannels;
    const blocks = this.channels.map((width, level) => {
      const stride = level === 0 ? 1 : 2;
      const block = new ConvBlock(previous, width, config, random, stride);
      previous = width;
      return block;
    });
    this.levels = this.moduleList('levels', blocks);
  }

  /** Channels of the bottleneck (level 4) features. */
  get bottleneckChannels(): number {
    return this.channels[this.channels.length - 1];
  }

  /** Encodes x [N, C, D, H, W] into its five-level feature pyramid. */
  forward(x: Tensor): FeaturePyramid {
    checkVolumeInput('Encoder3d', 'input', x, this.levels.at(0).inChannels);
    return tidy(() => {
      const pyramid: Tensor[] = [];
      let features = x;
      for (const block of this.levels) {
        features = block.forward(features);
        pyramid.push(features);
      }
      return pyramid;
    });
  }
}
