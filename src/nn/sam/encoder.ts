// SamImageEncoder: the ViT image encoder of Segment Anything, parameter for
// parameter (official names without the checkpoint's `image_encoder.`
// prefix), so released checkpoints load through key-map.ts.
//
// Layout: input images [B, 3, H, W] (preprocessed, see preprocess.ts),
// tokens channels last [B, H / 16, W / 16, C] inside, output feature maps
// [B, outChannels, H / 16, W / 16].

import { add } from '../../ops/elementwise.js';
import { zeros } from '../../ops/creation.js';
import { permute } from '../../ops/layout.js';
import { formatShape, tidy, type Tensor } from '../../tensor.js';
import { Conv2d } from '../conv.js';
import { resolveRandom, type RandomSource } from '../init.js';
import { Module, type ModuleList } from '../module.js';
import { LayerNorm2d, PatchEmbed, SamBlock } from './blocks.js';
import {
  isGlobalBlock,
  mlpHiddenDim,
  samConfig,
  tokenGridSize,
  type SamConfigName,
  type SamEncoderConfig,
} from './config.js';
import { resampleGrid } from './interpolate.js';

export interface SamEncoderOptions {
  /** Generator of the initial values (PyTorch's default layer init). */
  seed?: RandomSource;
  /** Byte budget of one attention score tensor (see attend()). */
  maxScoreBytes?: number;
}

/**
 * SAM's image encoder. Parameters start as SAM initialises them: PyTorch's
 * defaults for the linear and convolution layers, ones and zeros for the
 * LayerNorms, zeros for pos_embed and the relative position tables.
 *
 * Input sizes other than the config's imageSize are accepted when they are
 * multiples of the patch size. The position embedding is then resampled
 * bilinearly (align_corners false, no antialiasing) to the token grid, and
 * the global blocks' relative position tables linearly, as SAM's
 * get_rel_pos does.
 * NOTE: SAM itself has no such resampling of pos_embed, because it always
 * runs at 1024x1024. Features of a pretrained checkpoint at another size
 * are therefore not those SAM computes; timm's ViTs resample bicubically
 * instead, which gives slightly different values again.
 */
export class SamImageEncoder extends Module {
  readonly config: SamEncoderConfig;
  readonly patchEmbed: PatchEmbed;
  readonly posEmbed: Tensor | null = null;
  readonly blocks: ModuleList<SamBlock>;
  readonly neck: ModuleList<Conv2d | LayerNorm2d>;

  constructor(
    config: SamConfigName | SamEncoderConfig,
    options: SamEncoderOptions = {},
  ) {
    super();
    this.config = samConfig(config);
    const { embedDim: dim, outChannels: out } = this.config;
    const random = resolveRandom(options.seed);
    const grid = tokenGridSize(this.config);
    const patch = this.config.patchSize;
    const patchEmbed = new PatchEmbed(patch, dim, random);
    this.patchEmbed = this.module('patch_embed', patchEmbed);
    if (this.config.useAbsolutePosition) {
      this.posEmbed = this.param('pos_embed', zeros([1, grid, grid, dim]));
    }
    const blocks: SamBlock[] = [];
    for (let i = 0; i < this.config.depth; i++) {
      const isGlobal = isGlobalBlock(this.config, i);
      const span = isGlobal ? grid : this.config.windowSize;
      blocks.push(
        new SamBlock(dim, {
          heads: this.config.heads,
          mlpHidden: mlpHiddenDim(this.config),
          windowSize: isGlobal ? 0 : this.config.windowSize,
          qkvBias: this.config.qkvBias,
          relativePositionSize: this.config.useRelativePosition ? span : null,
          layerNormEps: this.config.layerNormEps,
          maxScoreBytes: options.maxScoreBytes,
          seed: random,
        }),
      );
    }
    this.blocks = this.moduleList('blocks', blocks);
    this.neck = this.moduleList('neck', [
      new Conv2d(dim, out, 1, { bias: false, seed: random }),
      new LayerNorm2d(out),
      new Conv2d(out, out, 3, { padding: 1, bias: false, seed: random }),
      new LayerNorm2d(out),
    ]);
  }

  /** Side of the output feature map for an input of `size` pixels. */
  outputSize(size: number): number {
    return size / this.config.patchSize;
  }

  /**
   * Encodes preprocessed images `x` [B, 3, H, W] (H and W multiples of the
   * patch size) into features [B, outChannels, H / patch, W / patch].
   */
  forward(x: Tensor): Tensor {
    const { patchSize } = this.config;
    const [, channels, h, w] = x.shape;
    if (x.rank !== 4 || channels !== 3 || h % patchSize || w % patchSize) {
      throw new RangeError(
        `SamImageEncoder: input ${formatShape(x.shape)} must be [B, 3, H, W] ` +
          `with H and W multiples of ${patchSize} (the config's size is ` +
          `${this.config.imageSize})`,
      );
    }
    return tidy(() => {
      let tokens = this.patchEmbed.forward(x);
      if (this.posEmbed) {
        const [, gh, gw] = tokens.shape;
        tokens = add(tokens, resampleGrid(this.posEmbed, gh, gw));
      }
      for (const block of this.blocks) {
        // The block's own tidy frees its intermediates. Dropping the
        // previous tokens as well keeps one grid alive between blocks (the
        // tape, if any, still holds what backward needs).
        const next = block.forward(tokens);
        tokens.dispose();
        tokens = next;
      }
      let features = permute(tokens, [0, 3, 1, 2]);
      for (const layer of this.neck) features = layer.forward(features);
      return features;
    });
  }
}
