// The auto-prompting segmentation decoder of the medical branch: the
// general branch's coarse mask goes through SAM's mask-prompt path (3D)
// to a dense embedding that is added to the medical encoder's bottleneck
// features before the segmentation decoder runs.
//
// Layout: mask probabilities [N, K + 1, D, H, W]; the embedding has the
// bottleneck's shape [N, encoderChannels[4], D / 16, H / 16, W / 16].

import { avgPool3d } from '../../ops/pool.js';
import { formatShape, tidy, type Tensor } from '../../tensor.js';
import { resolveRandom, type RandomSource } from '../init.js';
import { Module } from '../module.js';
import { MaskPromptEncoder3d } from '../sam/prompt-encoder.js';
import type { RrlModelConfig } from './config.js';
import type { FeaturePyramid } from './encoder.js';
import { SegmentationDecoder } from './segmentation-decoder.js';

/**
 * Reduction of the mask before the prompt encoder. SAM feeds its mask
 * encoder masks at 4 times the embedding's resolution, and the embedding
 * here sits at 1/16 of the input, so the mask is average-pooled by 4
 * (which keeps each class's probability mass) to 1/4 of the input.
 */
const MASK_POOL = 4;

/**
 * Medical segmentation decoder with an optional mask prompt. With
 * autoPrompt on, `prompt_encoder` (MaskPromptEncoder3d with K + 1 input
 * channels and the bottleneck width as embedding) embeds the pooled mask;
 * with autoPrompt off the module has no prompt encoder and decodes the
 * features alone (the "without auto-prompt" ablation).
 */
export class AutoPromptDecoder extends Module {
  readonly promptEncoder: MaskPromptEncoder3d | null = null;
  readonly decoder: SegmentationDecoder;

  constructor(config: RrlModelConfig, seed?: RandomSource) {
    super();
    const random = resolveRandom(seed);
    if (config.autoPrompt) {
      const promptEncoder = new MaskPromptEncoder3d({
        inChannels: config.numClasses,
        hiddenChannels: config.promptHiddenChannels,
        embedDim: config.encoderChannels[4],
        seed: random,
      });
      this.promptEncoder = this.module('prompt_encoder', promptEncoder);
    }
    const decoder = new SegmentationDecoder(config, random);
    this.decoder = this.module('decoder', decoder);
  }

  /** Returns the dense prompt embedding of mask probabilities. */
  embedMask(mask: Tensor): Tensor {
    if (!this.promptEncoder) {
      throw new Error(
        'AutoPromptDecoder.embedMask: the model was built with autoPrompt ' +
          'false, so it has no prompt encoder',
      );
    }
    const spatial = mask.shape.slice(2);
    if (mask.rank !== 5 || spatial.some((size) => size % 16 !== 0)) {
      throw new RangeError(
        `AutoPromptDecoder: mask ${formatShape(mask.shape)} must be ` +
          '[N, K + 1, D, H, W] with D, H, W multiples of 16',
      );
    }
    const encoder = this.promptEncoder;
    return tidy(() =>
      encoder.forward(avgPool3d(mask, { kernelSize: MASK_POOL })),
    );
  }

  /**
   * Returns class probabilities for the medical pyramid, prompted by
   * `mask` (the general branch's probabilities) when autoPrompt is on.
   * `mask` is ignored when autoPrompt is off and required when it is on.
   */
  forward(pyramid: FeaturePyramid, mask: Tensor | null): Tensor {
    if (!this.promptEncoder) return this.decoder.forward(pyramid);
    if (!mask) {
      throw new Error(
        'AutoPromptDecoder: autoPrompt is on but no prompt mask was given',
      );
    }
    return tidy(() => this.decoder.forward(pyramid, this.embedMask(mask)));
  }
}
