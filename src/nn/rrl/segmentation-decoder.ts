// SegmentationDecoder: the U-Net style decoder of both branches, from one
// feature pyramid to class probabilities at full resolution.
//
// Layout: pyramid as in encoder.ts; probabilities [N, K + 1, D, H, W],
// softmax over the class axis, class 0 the background. With
// segmentationLevel 1 the decoder ends on the half grid and its class
// scores are upsampled to the full grid before the softmax.

import { add } from '../../ops/elementwise.js';
import { softmax } from '../../ops/softmax.js';
import { upsample3d } from '../../ops/upsample.js';
import { formatShape, tidy, type Tensor } from '../../tensor.js';
import { Conv3d } from '../conv.js';
import { resolveRandom, type RandomSource } from '../init.js';
import { Module } from '../module.js';
import type { RrlModelConfig } from './config.js';
import type { FeaturePyramid } from './encoder.js';
import { UpPath, type UpPathShape } from './registration-decoder.js';

/**
 * U-Net decoder over the target's pyramid: the upward path (upsample,
 * concatenate the skip, ConvBlock at levels 3 to segmentationLevel) and a
 * 1x1x1 convolution `head` to numClasses scores, upsampled to the full
 * grid when the path ends above it, then softmax over classes.
 */
export class SegmentationDecoder extends Module {
  readonly up: UpPath;
  readonly head: Conv3d;
  readonly numClasses: number;

  constructor(config: RrlModelConfig, seed?: RandomSource) {
    super();
    const random = resolveRandom(seed);
    const widths = config.encoderChannels;
    const shape = segmentationShape(config);
    this.up = this.module('up', new UpPath(widths[4], widths, config, random, shape));
    this.numClasses = config.numClasses;
    this.head = this.module(
      'head',
      new Conv3d(shape.widths[shape.lastLevel], config.numClasses, 1, {
        seed: random,
      }),
    );
  }

  /**
   * Returns class probabilities [N, K + 1, D, H, W] for `pyramid`. A
   * `prompt` of the bottleneck's shape is added to the bottleneck features
   * first (the auto-prompting path).
   */
  forward(pyramid: FeaturePyramid, prompt: Tensor | null = null): Tensor {
    const bottleneck = pyramid[4];
    if (pyramid.length !== 5) {
      throw new RangeError(
        `SegmentationDecoder: the pyramid has ${pyramid.length} levels, ` +
          'expected 5',
      );
    }
    if (
      prompt &&
      !prompt.shape.every((size, axis) => size === bottleneck.shape[axis])
    ) {
      throw new RangeError(
        `SegmentationDecoder: prompt ${formatShape(prompt.shape)} must have ` +
          `the bottleneck's shape ${formatShape(bottleneck.shape)}`,
      );
    }
    return tidy(() => {
      const start = prompt ? add(bottleneck, prompt) : bottleneck;
      const x = this.up.forward(start, pyramid.slice(0, 4));
      let scores = this.head.forward(x);
      for (let level = this.up.lastLevel; level > 0; level--) {
        scores = upsample3d(scores, { scale: 2, mode: 'linear' });
      }
      return softmax(scores, 1);
    });
  }
}

/** Returns the UpPath shape of a config's segmentation decoders. */
export function segmentationShape(config: RrlModelConfig): Omit<UpPathShape, 'extraSkipChannels'> {
  return {
    widths: config.segmentationChannels ?? config.decoderChannels,
    convs: config.segmentationConvs ?? config.decoderConvs,
    lastLevel: config.segmentationLevel ?? 0,
  };
}
