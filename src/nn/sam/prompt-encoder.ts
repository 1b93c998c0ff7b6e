// The mask-prompt path of SAM's prompt encoder (mask_downscaling), in 2D as
// SAM has it and in 3D for the auto-prompting decoder. That decoder turns
// the general branch's coarse 3D mask into a dense embedding and adds it to
// the medical encoder's bottleneck features.
//
// Structure, named like SAM's nn.Sequential (GELU entries have no
// parameters):
//   0 conv k2 s2 (in -> hidden / 4), 1 LayerNorm over channels, 2 GELU,
//   3 conv k2 s2 (hidden / 4 -> hidden), 4 LayerNorm over channels, 5 GELU,
//   6 conv k1 (hidden -> embed)
// so the output is 4 times coarser than the mask along each axis (sizes
// that are not multiples of 4 are floored, as in PyTorch).

import { gelu } from '../../ops/activation.js';
import { formatShape, tidy, type Tensor } from '../../tensor.js';
import { Conv2d, Conv3d } from '../conv.js';
import { resolveRandom, type RandomSource } from '../init.js';
import { Module, type ModuleList } from '../module.js';
import { LayerNorm2d } from './blocks.js';

/** GELU as a module without parameters, to keep Sequential's indices. */
export class Gelu extends Module {
  forward(x: Tensor): Tensor {
    return gelu(x);
  }
}

export interface MaskPromptOptions {
  /** Channels of the mask (default 1, SAM's single mask logit map). */
  inChannels?: number;
  /** Channels after the second strided conv (SAM's mask_in_chans, 16). */
  hiddenChannels?: number;
  /** Channels of the output embedding (SAM's prompt embed_dim, 256). */
  embedDim?: number;
  seed?: RandomSource;
}

type Layer = Conv2d | Conv3d | LayerNorm2d | Gelu;

function resolveChannels(op: string, options: MaskPromptOptions) {
  const inChannels = options.inChannels ?? 1;
  const hidden = options.hiddenChannels ?? 16;
  const embed = options.embedDim ?? 256;
  if (!Number.isInteger(hidden) || hidden < 4 || hidden % 4 !== 0) {
    throw new RangeError(
      `${op}: hiddenChannels must be a positive multiple of 4, got ${hidden}`,
    );
  }
  return { inChannels, hidden, embed };
}

/** Shared body of the 2D and 3D encoders. */
abstract class MaskPromptEncoder extends Module {
  readonly maskDownscaling: ModuleList<Layer>;
  readonly inChannels: number;
  readonly embedDim: number;

  constructor(
    private readonly op: string,
    private readonly spatialRank: 2 | 3,
    options: MaskPromptOptions,
  ) {
    super();
    const { inChannels, hidden, embed } = resolveChannels(op, options);
    this.inChannels = inChannels;
    this.embedDim = embed;
    const random = resolveRandom(options.seed);
    const Conv = spatialRank === 2 ? Conv2d : Conv3d;
    const quarter = hidden / 4;
    this.maskDownscaling = this.moduleList('mask_downscaling', [
      new Conv(inChannels, quarter, 2, { stride: 2, seed: random }),
      new LayerNorm2d(quarter),
      new Gelu(),
      new Conv(quarter, hidden, 2, { stride: 2, seed: random }),
      new LayerNorm2d(hidden),
      new Gelu(),
      new Conv(hidden, embed, 1, { seed: random }),
    ]);
  }

  override get typeName(): string {
    return this.op;
  }

  /**
   * Embeds a mask [N, inChannels, ...spatial] (2 or 3 spatial axes, each
   * at least 4) into [N, embedDim, ...floor(spatial / 4)].
   */
  forward(mask: Tensor): Tensor {
    const rank = this.spatialRank + 2;
    const spatial = mask.shape.slice(2);
    if (
      mask.rank !== rank ||
      mask.shape[1] !== this.inChannels ||
      spatial.some((size) => size < 4)
    ) {
      const layout = rank === 4 ? '[N, C, H, W]' : '[N, C, D, H, W]';
      throw new RangeError(
        `${this.op}: mask ${formatShape(mask.shape)} must be ${layout} ` +
          `with C = ${this.inChannels} and every spatial size at least 4`,
      );
    }
    return tidy(() => {
      let x = mask;
      for (const layer of this.maskDownscaling) x = layer.forward(x);
      return x;
    });
  }
}

/**
 * SAM's 2D mask-prompt encoder: a mask [N, C, H, W] to a dense embedding
 * [N, embedDim, H / 4, W / 4]. The defaults are SAM's (1 channel, hidden
 * 16, embedding 256), and the official weights load with
 * SAM_MASK_PROMPT_KEYS.
 */
export class MaskPromptEncoder2d extends MaskPromptEncoder {
  constructor(options: MaskPromptOptions = {}) {
    super('MaskPromptEncoder2d', 2, options);
  }
}

/**
 * The 3D counterpart for the auto-prompting decoder: the same layers with
 * 2x2x2 stride-2 and 1x1x1 Conv3d and LayerNorm over channels, a mask
 * [N, C, D, H, W] to [N, embedDim, D / 4, H / 4, W / 4].
 */
export class MaskPromptEncoder3d extends MaskPromptEncoder {
  constructor(options: MaskPromptOptions = {}) {
    super('MaskPromptEncoder3d', 3, options);
  }
}
