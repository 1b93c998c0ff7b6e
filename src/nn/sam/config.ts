// Configurations of SAM's ViT image encoder: the three published sizes
// (vit_b, vit_l, vit_h at 1024x1024 input) and small ones for tests and
// CPU runs, with the parameter shapes each one implies.

export interface SamEncoderConfig {
  /** Config name, such as 'vit_b' or 'tiny'. */
  name: string;
  /** Input side in pixels that the position embedding is made for. */
  imageSize: number;
  /** Side of the square patches (the stride of the patch embedding). */
  patchSize: number;
  /** Token width. */
  embedDim: number;
  /** Number of transformer blocks. */
  depth: number;
  /** Attention heads per block; embedDim must be a multiple of it. */
  heads: number;
  /** Hidden width of each MLP as a multiple of embedDim. */
  mlpRatio: number;
  /** Channels of the neck, the width of the output feature map. */
  outChannels: number;
  /** Side of the attention windows of the windowed blocks, in tokens. */
  windowSize: number;
  /** Indices of the blocks that attend over the whole token grid. */
  globalAttentionBlocks: readonly number[];
  qkvBias: boolean;
  /** Add the decomposed relative position bias in attention. */
  useRelativePosition: boolean;
  /** Add the learned absolute position embedding after the patch embedding. */
  useAbsolutePosition: boolean;
  /** Epsilon of the blocks' LayerNorms (SAM builds them with 1e-6). */
  layerNormEps: number;
}

const SAM_COMMON = {
  imageSize: 1024,
  patchSize: 16,
  mlpRatio: 4,
  outChannels: 256,
  windowSize: 14,
  qkvBias: true,
  useRelativePosition: true,
  useAbsolutePosition: true,
  layerNormEps: 1e-6,
} as const;

/**
 * The encoder configs by name. vit_b, vit_l and vit_h are the official
 * Segment Anything image encoders. `tiny` (70k parameters, 32 output
 * channels) is the test config of the PyTorch fixtures. `small` (2.6M
 * parameters, 256 output channels like SAM) is the default teacher
 * without a GPU, at 256x256 input.
 */
export const SAM_CONFIGS = {
  vit_b: {
    ...SAM_COMMON,
    name: 'vit_b',
    embedDim: 768,
    depth: 12,
    heads: 12,
    globalAttentionBlocks: [2, 5, 8, 11],
  },
  vit_l: {
    ...SAM_COMMON,
    name: 'vit_l',
    embedDim: 1024,
    depth: 24,
    heads: 16,
    globalAttentionBlocks: [5, 11, 17, 23],
  },
  vit_h: {
    ...SAM_COMMON,
    name: 'vit_h',
    embedDim: 1280,
    depth: 32,
    heads: 16,
    globalAttentionBlocks: [7, 15, 23, 31],
  },
  tiny: {
    ...SAM_COMMON,
    name: 'tiny',
    imageSize: 256,
    embedDim: 32,
    depth: 2,
    heads: 2,
    outChannels: 32,
    windowSize: 7,
    globalAttentionBlocks: [1],
  },
  small: {
    ...SAM_COMMON,
    name: 'small',
    imageSize: 256,
    embedDim: 192,
    depth: 4,
    heads: 3,
    windowSize: 8,
    globalAttentionBlocks: [1, 3],
  },
} as const satisfies Record<string, SamEncoderConfig>;

export type SamConfigName = keyof typeof SAM_CONFIGS;

/** The default teacher config on a machine without a GPU. */
export const DEFAULT_CPU_TEACHER: SamConfigName = 'small';

/**
 * Returns the config of `nameOrConfig` with `overrides` applied, checked:
 * throws naming the field when a value is out of range.
 */
export function samConfig(
  nameOrConfig: SamConfigName | SamEncoderConfig,
  overrides: Partial<SamEncoderConfig> = {},
): SamEncoderConfig {
  let base: SamEncoderConfig;
  if (typeof nameOrConfig === 'string') {
    if (!(nameOrConfig in SAM_CONFIGS)) {
      throw new RangeError(
        `samConfig: unknown config "${nameOrConfig}"; expected one of ` +
          Object.keys(SAM_CONFIGS).join(', '),
      );
    }
    base = SAM_CONFIGS[nameOrConfig];
  } else {
    base = nameOrConfig;
  }
  const config: SamEncoderConfig = { ...base, ...overrides };
  checkConfig(config);
  return config;
}

function checkConfig(config: SamEncoderConfig): void {
  const positive: (keyof SamEncoderConfig)[] = [
    'imageSize',
    'patchSize',
    'embedDim',
    'depth',
    'heads',
    'mlpRatio',
    'outChannels',
  ];
  for (const field of positive) {
    const value = config[field];
    if (typeof value !== 'number' || !(value > 0)) {
      throw new RangeError(
        `samConfig: ${field} must be positive, got ${String(value)}`,
      );
    }
  }
  const { embedDim, heads, imageSize, patchSize, depth } = config;
  if (embedDim % heads !== 0) {
    throw new RangeError(
      `samConfig: embedDim ${embedDim} is not a multiple of heads ${heads}`,
    );
  }
  if (imageSize % patchSize !== 0) {
    throw new RangeError(
      `samConfig: imageSize ${imageSize} is not a multiple of patchSize ` +
        `${patchSize}`,
    );
  }
  if (!Number.isInteger(config.windowSize) || config.windowSize < 0) {
    throw new RangeError(
      `samConfig: windowSize must be an integer >= 0 (0 makes every block ` +
        `global), got ${config.windowSize}`,
    );
  }
  for (const index of config.globalAttentionBlocks) {
    if (!Number.isInteger(index) || index < 0 || index >= depth) {
      throw new RangeError(
        `samConfig: global attention block ${index} is not a block index ` +
          `of depth ${depth}`,
      );
    }
  }
}

/** Side of the token grid at the config's own input size. */
export function tokenGridSize(config: SamEncoderConfig): number {
  return config.imageSize / config.patchSize;
}

/** Returns whether block `index` attends globally (else within windows). */
export function isGlobalBlock(
  config: SamEncoderConfig,
  index: number,
): boolean {
  const listed = config.globalAttentionBlocks.includes(index);
  return config.windowSize === 0 || listed;
}

/** Hidden width of the MLPs, truncated like PyTorch's int(dim * ratio). */
export function mlpHiddenDim(config: SamEncoderConfig): number {
  return Math.trunc(config.embedDim * config.mlpRatio);
}

/**
 * Shapes of every parameter of the image encoder, by the official names
 * (without the checkpoint's `image_encoder.` prefix), in registration
 * order. SamImageEncoder registers exactly these.
 */
export function samEncoderShapes(
  config: SamEncoderConfig,
): Map<string, number[]> {
  const { embedDim: dim, patchSize: patch, outChannels: out } = config;
  const grid = tokenGridSize(config);
  const headDim = dim / config.heads;
  const hidden = mlpHiddenDim(config);
  const shapes = new Map<string, number[]>();
  // PyTorch lists a module's own parameters before its submodules', so
  // pos_embed comes first and rel_pos_h before attn.qkv.
  if (config.useAbsolutePosition) shapes.set('pos_embed', [1, grid, grid, dim]);
  shapes.set('patch_embed.proj.weight', [dim, 3, patch, patch]);
  shapes.set('patch_embed.proj.bias', [dim]);
  for (let i = 0; i < config.depth; i++) {
    const prefix = `blocks.${i}`;
    const span = isGlobalBlock(config, i) ? grid : config.windowSize;
    shapes.set(`${prefix}.norm1.weight`, [dim]);
    shapes.set(`${prefix}.norm1.bias`, [dim]);
    if (config.useRelativePosition) {
      shapes.set(`${prefix}.attn.rel_pos_h`, [2 * span - 1, headDim]);
      shapes.set(`${prefix}.attn.rel_pos_w`, [2 * span - 1, headDim]);
    }
    shapes.set(`${prefix}.attn.qkv.weight`, [3 * dim, dim]);
    if (config.qkvBias) shapes.set(`${prefix}.attn.qkv.bias`, [3 * dim]);
    shapes.set(`${prefix}.attn.proj.weight`, [dim, dim]);
    shapes.set(`${prefix}.attn.proj.bias`, [dim]);
    shapes.set(`${prefix}.norm2.weight`, [dim]);
    shapes.set(`${prefix}.norm2.bias`, [dim]);
    shapes.set(`${prefix}.mlp.lin1.weight`, [hidden, dim]);
    shapes.set(`${prefix}.mlp.lin1.bias`, [hidden]);
    shapes.set(`${prefix}.mlp.lin2.weight`, [dim, hidden]);
    shapes.set(`${prefix}.mlp.lin2.bias`, [dim]);
  }
  shapes.set('neck.0.weight', [out, dim, 1, 1]);
  shapes.set('neck.1.weight', [out]);
  shapes.set('neck.1.bias', [out]);
  shapes.set('neck.2.weight', [out, out, 3, 3]);
  shapes.set('neck.3.weight', [out]);
  shapes.set('neck.3.bias', [out]);
  return shapes;
}

/** Number of parameters of the encoder of `config` (see samEncoderShapes). */
export function samEncoderParameterCount(config: SamEncoderConfig): number {
  let count = 0;
  for (const shape of samEncoderShapes(config).values()) {
    count += shape.reduce((n, d) => n * d, 1);
  }
  return count;
}
