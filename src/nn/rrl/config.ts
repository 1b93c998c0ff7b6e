// Configuration of the RRL-MedSAM networks: widths, normalisation,
// activation, diffeomorphic integration and the auto-prompt switch, with
// named presets and the closed-form parameter count of the encoder.
//
// Channel lists run from full resolution (level 0) to the bottleneck
// (level 4). The encoder halves the grid at levels 1 to 4, so an input's
// D, H and W must be multiples of 16.

/** Normalisation after every 3x3x3 convolution of the CNN blocks. */
export type NormKind = 'instance' | 'group' | 'none';

export interface RrlModelConfig {
  /** Preset name, for logs and checkpoints. */
  name: string;
  /** Image channels (1 for a single MR or CT contrast). */
  inChannels: number;
  /** K + 1: the K labelled structures and the background (class 0). */
  numClasses: number;
  /** Output channels of the five encoder levels, finest first. */
  encoderChannels: readonly number[];
  /**
   * Output channels of the four decoder levels 0 to 3, finest first, used
   * by the registration decoder and both segmentation decoders.
   */
  decoderChannels: readonly number[];
  /**
   * 3x3x3 convolutions per decoder level (1 or 2). The encoder always has
   * two per level.
   */
  decoderConvs: 1 | 2;
  norm: NormKind;
  /** Groups of group normalisation (must divide every width). */
  normGroups: number;
  /** Learn a per-channel scale and shift in each normalisation layer. */
  normAffine: boolean;
  /** Negative slope of the LeakyReLU after each normalisation. */
  leakySlope: number;
  /**
   * Scaling and squaring steps that integrate the decoder's output as a
   * stationary velocity field; 0 uses the output as the displacement.
   */
  integrationSteps: number;
  /**
   * Output channels of the registration decoder's levels 0 to 3, finest
   * first (entries below flowLevel are unused). Absent: decoderChannels.
   */
  registrationChannels?: readonly number[];
  /** 3x3x3 convolutions per registration decoder level. Absent: decoderConvs. */
  registrationConvs?: 1 | 2;
  /**
   * Switch that concatenates the atlas and target images to the
   * registration decoder's finest skip, so that level's convolutions read
   * both intensities. Absent: false.
   */
  registrationImages?: boolean;
  /**
   * Level whose grid the flow is computed on: 0 the full grid, 1 half of
   * it, upsampled trilinearly to the full grid. Absent: 0.
   */
  flowLevel?: 0 | 1;
  /**
   * Output channels of both segmentation decoders' levels 0 to 3, finest
   * first (entries below segmentationLevel are unused). Absent:
   * decoderChannels.
   */
  segmentationChannels?: readonly number[];
  /** 3x3x3 convolutions per segmentation decoder level. Absent: decoderConvs. */
  segmentationConvs?: 1 | 2;
  /**
   * Level whose grid the segmentation decoders end on: 0 the full grid, 1
   * half of it, with the class scores upsampled trilinearly to the full
   * grid before the softmax. Absent: 0.
   */
  segmentationLevel?: 0 | 1;
  /** Feed the general branch's mask to the medical decoder as a prompt. */
  autoPrompt: boolean;
  /** Stop gradients of the medical losses at the prompt mask. */
  detachPrompt: boolean;
  /** Hidden width of the mask-prompt encoder (a multiple of 4, >= 8). */
  promptHiddenChannels: number;
  /** Channels of the teacher's features that the projection maps to. */
  teacherChannels: number;
  /** Standard deviation of the initial weights of the flow convolution. */
  flowInitStd: number;
  /** Seed of the initial weights. */
  seed: number;
}

/** A preset: a model config without the data-dependent class count. */
export type RrlPreset = Omit<RrlModelConfig, 'numClasses'> & {
  /** Training grid [D, H, W] the preset is sized for. */
  grid: readonly [number, number, number];
};

/** Parameters of SAM ViT-B's image encoder (samEncoderParameterCount). */
export const SAM_VIT_B_PARAMETERS = 89_670_912;

const COMMON = {
  inChannels: 1,
  decoderConvs: 2,
  norm: 'instance',
  normGroups: 4,
  normAffine: true,
  // PyTorch's default slope, also nnU-Net's.
  leakySlope: 0.01,
  // Decision: plain displacement by default, as VoxelMorph's default
  // (int_steps = 7 there makes the field diffeomorphic). Set 7 to integrate.
  integrationSteps: 0,
  autoPrompt: true,
  detachPrompt: true,
  // SAM's mask_in_chans.
  promptHiddenChannels: 16,
  // SAM's image encoder neck width.
  teacherChannels: 256,
  // VoxelMorph initialises its flow layer with Normal(0, 1e-5), zero bias.
  flowInitStd: 1e-5,
  seed: 0,
} as const;

/**
 * Named presets.
 * - `default`: RRL-MedSAM's set-up at 128^3. The encoder has 2,767,920
 *   parameters, 3.09% of SAM ViT-B's 89,670,912 (encoderParameterCount).
 * - `cpu`: a narrower network on a 64^3 grid for machines without a GPU,
 *   picked by measurement (see the comment at its entry).
 * - `tiny`: the smallest widths that exercise every code path, for tests.
 */
export const RRL_PRESETS = {
  default: {
    ...COMMON,
    name: 'default',
    encoderChannels: [16, 32, 64, 128, 208],
    decoderChannels: [16, 32, 64, 128],
    grid: [128, 128, 128],
  },
  // Measured with `rrl-medsam bench --size 64 --weight-dice 0` (43
  // classes, augmented, l3 = 0 as in the IXI demo) on an otherwise idle
  // 2-core machine (lavapipe, Mesa 25.0.7). One iteration took 1.84 s in
  // stage 1 and 1.94 s in stage 2 (1.94 and 2.10 s with l3 = 1), so
  // 300 + 300 iterations take about 19 minutes. The widths were picked at
  // 48^3 when one iteration still took 4.6 s there. Doubling the decoder
  // widths ([8, 8, 16, 32]) added about 1 s per iteration at 64^3, which
  // 300 + 300 iterations in 30 minutes cannot afford. The default widths
  // took 25 and 29 s per iteration at 64^3 (five classes).
  //
  // The registration decoder has its own widths, two convolutions per
  // level, the two images joined at its finest level, and computes the
  // field on the 32^3 grid (flowLevel 1). Trained alone for 300
  // iterations (bench/registration-variants.ts) on the IXI split, it raised the mean
  // registration Dice over the 17 large MUSE regions from 0.599 (the
  // segmentation decoders' widths) to 0.617, for 0.36 s more per
  // iteration. The same decoder on the full grid with 16 channels reached
  // 0.636 but cost 1.8 s more per iteration.
  //
  // The segmentation decoders have 16 channels and end on the 32^3 grid,
  // upsampling their class scores. Each decoder was trained alone for 300
  // iterations on the affine atlas labels (bench/segmentation-variants.ts)
  // and scored by the mean Dice over the 42 structures of the held-out
  // scans: this one reached 0.175, the full-grid decoder of widths
  // decoderChannels 0.062. In the full demo (learning rate 1e-3) it raised
  // yhat_m from 0.058 to 0.255 and yhat_g from 0.099 to 0.288. With l3 = 1 it also pulled
  // the registration below the affine alignment, so the demo trains with
  // l3 = 0 (see src/cli/demo.ts).
  cpu: {
    ...COMMON,
    name: 'cpu',
    encoderChannels: [4, 8, 16, 32, 64],
    // Required fields that this preset does not use: the registration and
    // segmentation decoders set their own widths and convolutions below.
    decoderChannels: [4, 4, 8, 16],
    decoderConvs: 1,
    registrationChannels: [16, 16, 32, 32],
    registrationConvs: 2,
    registrationImages: true,
    flowLevel: 1,
    segmentationChannels: [16, 16, 16, 16],
    segmentationConvs: 1,
    segmentationLevel: 1,
    grid: [64, 64, 64],
  },
  tiny: {
    ...COMMON,
    name: 'tiny',
    encoderChannels: [2, 4, 4, 8, 8],
    decoderChannels: [2, 4, 4, 8],
    normGroups: 2,
    promptHiddenChannels: 8,
    grid: [32, 32, 32],
  },
} as const satisfies Record<string, RrlPreset>;

export type RrlPresetName = keyof typeof RRL_PRESETS;

/** Options of rrlConfig: a preset, the class count and any overrides. */
export type RrlConfigOptions = Partial<RrlModelConfig> & {
  numClasses: number;
  preset?: RrlPresetName;
};

/**
 * Returns the checked model config of `options.preset` (default
 * 'default') with the other fields of `options` applied. Throws a
 * RangeError naming the field when a value is out of range.
 */
export function rrlConfig(options: RrlConfigOptions): RrlModelConfig {
  const presetName = options.preset ?? 'default';
  if (!(presetName in RRL_PRESETS)) {
    throw new RangeError(
      `rrlConfig: unknown preset "${presetName}"; expected one of ` +
        Object.keys(RRL_PRESETS).join(', '),
    );
  }
  const { grid: _grid, ...preset } = RRL_PRESETS[presetName];
  const { preset: _preset, ...overrides } = options;
  const config: RrlModelConfig = { ...preset, ...overrides };
  checkConfig(config);
  return config;
}

function checkWidths(
  field: string,
  widths: readonly number[],
  length: number,
  groups: number | null,
): void {
  if (widths.length !== length) {
    throw new RangeError(
      `rrlConfig: ${field} must list ${length} widths, got ` +
        `[${widths.join(', ')}]`,
    );
  }
  for (const width of widths) {
    if (!Number.isInteger(width) || width < 1) {
      throw new RangeError(
        `rrlConfig: ${field} [${widths.join(', ')}] must contain positive ` +
          'integers',
      );
    }
    if (groups !== null && width % groups !== 0) {
      throw new RangeError(
        `rrlConfig: ${field} width ${width} is not a multiple of ` +
          `normGroups ${groups}`,
      );
    }
  }
}

function checkConfig(config: RrlModelConfig): void {
  const positiveIntegers = [
    'inChannels',
    'normGroups',
    'promptHiddenChannels',
    'teacherChannels',
  ] as const;
  for (const field of positiveIntegers) {
    const value = config[field];
    if (!Number.isInteger(value) || value < 1) {
      throw new RangeError(
        `rrlConfig: ${field} must be a positive integer, got ${value}`,
      );
    }
  }
  if (!Number.isInteger(config.numClasses) || config.numClasses < 2) {
    throw new RangeError(
      `rrlConfig: numClasses must be an integer >= 2 (background and at ` +
        `least one structure), got ${config.numClasses}`,
    );
  }
  if (!['instance', 'group', 'none'].includes(config.norm)) {
    throw new RangeError(
      `rrlConfig: norm must be 'instance', 'group' or 'none', got ` +
        JSON.stringify(config.norm),
    );
  }
  const groups = config.norm === 'group' ? config.normGroups : null;
  checkWidths('encoderChannels', config.encoderChannels, 5, groups);
  checkWidths('decoderChannels', config.decoderChannels, 4, groups);
  if (config.registrationChannels !== undefined) {
    checkWidths('registrationChannels', config.registrationChannels, 4, groups);
  }
  if (config.segmentationChannels !== undefined) {
    checkWidths('segmentationChannels', config.segmentationChannels, 4, groups);
  }
  checkOptions(config);
}

/** Checks the fields besides the widths and the integer counts. */
function checkOptions(config: RrlModelConfig): void {
  if (config.decoderConvs !== 1 && config.decoderConvs !== 2) {
    throw new RangeError(
      `rrlConfig: decoderConvs must be 1 or 2, got ${config.decoderConvs}`,
    );
  }
  for (const field of ['registrationConvs', 'segmentationConvs'] as const) {
    const value = config[field];
    if (value !== undefined && value !== 1 && value !== 2) {
      throw new RangeError(`rrlConfig: ${field} must be 1 or 2, got ${value}`);
    }
  }
  for (const field of ['flowLevel', 'segmentationLevel'] as const) {
    const value = config[field];
    if (value !== undefined && value !== 0 && value !== 1) {
      throw new RangeError(`rrlConfig: ${field} must be 0 or 1, got ${value}`);
    }
  }
  if (config.registrationImages !== undefined && typeof config.registrationImages !== 'boolean') {
    throw new RangeError(
      `rrlConfig: registrationImages must be true or false, got ${JSON.stringify(config.registrationImages)}`,
    );
  }
  if (!Number.isInteger(config.integrationSteps) || config.integrationSteps < 0) {
    throw new RangeError(
      `rrlConfig: integrationSteps must be an integer >= 0, got ` +
        config.integrationSteps,
    );
  }
  // The prompt encoder's first LayerNorm normalises hidden / 4 channels,
  // and over a single channel it would output 0 whatever the mask.
  if (config.promptHiddenChannels % 4 !== 0 || config.promptHiddenChannels < 8) {
    throw new RangeError(
      `rrlConfig: promptHiddenChannels must be a multiple of 4 and at ` +
        `least 8, got ${config.promptHiddenChannels}`,
    );
  }
  if (!(config.leakySlope >= 0) || !Number.isFinite(config.leakySlope)) {
    throw new RangeError(
      `rrlConfig: leakySlope must be a finite number >= 0, got ` +
        config.leakySlope,
    );
  }
  if (!(config.flowInitStd >= 0) || !Number.isFinite(config.flowInitStd)) {
    throw new RangeError(
      `rrlConfig: flowInitStd must be a finite number >= 0, got ` +
        config.flowInitStd,
    );
  }
}

/** Parameters of one normalisation layer of `channels` channels. */
export function normParameterCount(
  config: Pick<RrlModelConfig, 'norm' | 'normAffine'>,
  channels: number,
): number {
  return config.norm !== 'none' && config.normAffine ? 2 * channels : 0;
}

/** Parameters of a 3x3x3 convolution with bias. */
function conv3Count(inChannels: number, outChannels: number): number {
  return 27 * inChannels * outChannels + outChannels;
}

/**
 * Returns the parameter count of Encoder3d for a config, in closed form:
 * per level two 3x3x3 convolutions with bias (the first from the previous
 * level's width) and their normalisation layers.
 */
export function encoderParameterCount(
  config: Pick<
    RrlModelConfig,
    'inChannels' | 'encoderChannels' | 'norm' | 'normAffine'
  >,
): number {
  let count = 0;
  let previous = config.inChannels;
  for (const width of config.encoderChannels) {
    count += conv3Count(previous, width) + conv3Count(width, width);
    count += 2 * normParameterCount(config, width);
    previous = width;
  }
  return count;
}
