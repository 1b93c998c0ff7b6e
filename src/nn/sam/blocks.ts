// Building blocks of SAM's image encoder, named like the official modules:
// LayerNorm over the last axis, LayerNorm2d over channels, the MLP with
// GELU, the patch embedding, and one transformer block with windowed or
// global attention.

import { add } from '../../ops/elementwise.js';
import { gelu } from '../../ops/activation.js';
import { ones, zeros } from '../../ops/creation.js';
import { permute } from '../../ops/layout.js';
import { layerNorm, layerNormChannels } from '../../ops/norm.js';
import { formatShape, tidy, type Tensor } from '../../tensor.js';
import { Conv2d } from '../conv.js';
import { resolveRandom, type RandomSource } from '../init.js';
import { Linear } from '../linear.js';
import { Module } from '../module.js';
import {
  SamAttention,
  windowPartition,
  windowUnpartition,
} from './attention.js';

/**
 * torch.nn.LayerNorm over the last axis of [..., channels], with weight
 * (ones) and bias (zeros) of shape [channels].
 */
export class LayerNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;

  constructor(
    readonly channels: number,
    readonly eps = 1e-5,
  ) {
    super();
    this.weight = this.param('weight', ones([channels]));
    this.bias = this.param('bias', zeros([channels]));
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, [this.channels], {
      weight: this.weight,
      bias: this.bias,
      eps: this.eps,
    });
  }
}

/**
 * SAM's LayerNorm2d: LayerNorm over the channel axis of [N, C, ...spatial]
 * (2D or 3D feature maps), eps 1e-6, weight ones and bias zeros [C].
 */
export class LayerNorm2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;

  constructor(
    readonly channels: number,
    readonly eps = 1e-6,
  ) {
    super();
    this.weight = this.param('weight', ones([channels]));
    this.bias = this.param('bias', zeros([channels]));
  }

  forward(x: Tensor): Tensor {
    if (x.rank < 2 || x.shape[1] !== this.channels) {
      throw new RangeError(
        `LayerNorm2d: input ${formatShape(x.shape)} must be [N, ` +
          `${this.channels}, ...spatial]`,
      );
    }
    return layerNormChannels(x, {
      weight: this.weight,
      bias: this.bias,
      eps: this.eps,
    });
  }
}

/** SAM's MLPBlock: lin1 (dim -> hidden), exact GELU, lin2 (hidden -> dim). */
export class MlpBlock extends Module {
  readonly lin1: Linear;
  readonly lin2: Linear;

  constructor(dim: number, hidden: number, seed?: RandomSource) {
    super();
    const random = resolveRandom(seed);
    this.lin1 = this.module('lin1', new Linear(dim, hidden, { seed: random }));
    this.lin2 = this.module('lin2', new Linear(hidden, dim, { seed: random }));
  }

  forward(x: Tensor): Tensor {
    return tidy(() => this.lin2.forward(gelu(this.lin1.forward(x))));
  }
}

/**
 * SAM's PatchEmbed: a patch x patch convolution with stride patch from 3
 * channels to `dim`, returning tokens channels last: [B, 3, H, W] to
 * [B, H / patch, W / patch, dim].
 */
export class PatchEmbed extends Module {
  readonly proj: Conv2d;

  constructor(
    readonly patch: number,
    readonly dim: number,
    seed?: RandomSource,
  ) {
    super();
    this.proj = this.module(
      'proj',
      new Conv2d(3, dim, patch, { stride: patch, seed }),
    );
  }

  forward(x: Tensor): Tensor {
    const [, , h, w] = x.shape;
    if (x.rank !== 4 || h % this.patch !== 0 || w % this.patch !== 0) {
      throw new RangeError(
        `PatchEmbed: input ${formatShape(x.shape)} must be [B, 3, H, W] ` +
          `with H and W multiples of the patch size ${this.patch}`,
      );
    }
    return tidy(() => permute(this.proj.forward(x), [0, 2, 3, 1]));
  }
}

export interface SamBlockOptions {
  heads: number;
  mlpHidden: number;
  /** Window side in tokens; 0 for global attention. */
  windowSize: number;
  qkvBias: boolean;
  /**
   * Side of the grid the relative position tables are made for (the
   * window, or the token grid of a global block); null for none.
   */
  relativePositionSize: number | null;
  layerNormEps: number;
  maxScoreBytes?: number;
  seed?: RandomSource;
}

/**
 * One transformer block of SAM's encoder on tokens [B, H, W, C]:
 * x + attn(norm1(x)) with attention inside windows (padded, then cropped)
 * or over the whole grid, then + mlp(norm2(x)).
 */
export class SamBlock extends Module {
  readonly norm1: LayerNorm;
  readonly attn: SamAttention;
  readonly norm2: LayerNorm;
  readonly mlp: MlpBlock;
  readonly windowSize: number;

  constructor(dim: number, options: SamBlockOptions) {
    super();
    const random = resolveRandom(options.seed);
    this.windowSize = options.windowSize;
    this.norm1 = this.module('norm1', new LayerNorm(dim, options.layerNormEps));
    this.attn = this.module(
      'attn',
      new SamAttention(dim, options.heads, {
        qkvBias: options.qkvBias,
        relativePositionSize: options.relativePositionSize,
        maxScoreBytes: options.maxScoreBytes,
        seed: random,
      }),
    );
    this.norm2 = this.module('norm2', new LayerNorm(dim, options.layerNormEps));
    this.mlp = this.module('mlp', new MlpBlock(dim, options.mlpHidden, random));
  }

  forward(x: Tensor): Tensor {
    return tidy(() => {
      const normed = this.norm1.forward(x);
      let attended: Tensor;
      if (this.windowSize > 0) {
        const [, h, w] = x.shape;
        const window = this.windowSize;
        const parts = windowPartition(normed, window);
        const padded = [parts.paddedHeight, parts.paddedWidth] as const;
        const out = this.attn.forward(parts.windows);
        attended = windowUnpartition(out, window, padded, [h, w]);
      } else {
        attended = this.attn.forward(normed);
      }
      const mixed = add(x, attended);
      return add(mixed, this.mlp.forward(this.norm2.forward(mixed)));
    });
  }
}
