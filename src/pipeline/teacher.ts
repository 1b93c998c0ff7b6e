// Teacher features for distillation: every axial slice of a volume goes
// through the frozen SAM image encoder, and the per-slice feature maps are
// stacked into a 3D feature volume [C, D, h, w] (C = 256 for SAM, h = w =
// input size / 16).
//
// The teacher is frozen, so features are computed once per volume and
// teacher and kept in a cache keyed by a hash of the volume data, the
// teacher config, the preprocessing and the identity of the weights. This
// file runs in browsers too. The disk cache lives in teacher-cache.ts
// (Node only), and a browser can implement TeacherFeatureCache on IndexedDB.

import { noGrad } from '../autograd/node.js';
import { deviceInfo } from '../device.js';
import type { HostTensor } from '../io/host-tensor.js';
import { log } from '../log.js';
import { narrow } from '../ops/layout.js';
import { reshape } from '../ops/view.js';
import {
  DEFAULT_CPU_TEACHER,
  mlpHiddenDim,
  samConfig,
  type SamConfigName,
  type SamEncoderConfig,
} from '../nn/sam/config.js';
import { SamImageEncoder } from '../nn/sam/encoder.js';
import {
  SAM_IMAGE_ENCODER_KEYS,
  inferSamConfig,
  loadWeights,
} from '../nn/sam/key-map.js';
import {
  resizedShape,
  samPreprocess,
  type IntensityRange,
} from '../nn/sam/preprocess.js';
import { formatShape, tensor, tidy, type Tensor } from '../tensor.js';

/** The teacher label of a randomly initialised encoder. */
export const RANDOM_TEACHER = 'random init (no SAM checkpoint)';

// Version of the feature computation in every cache key. Increase it with
// any change that alters the features of the same inputs (initialisation,
// preprocessing, encoder), so that older cache entries stop matching.
const FEATURE_FORMAT = 1;

/** Weights of an image encoder, from an official SAM checkpoint or not. */
export interface SamCheckpoint {
  /** Tensors by name: official SAM keys, prefixed or not. */
  tensors: ReadonlyMap<string, HostTensor>;
  /** Identity of the weights, such as checkpointIdentity() of the file. */
  identity: string;
}

export interface SamTeacherOptions {
  /**
   * Encoder config. Defaults to the one inferred from the checkpoint, and
   * without a checkpoint to DEFAULT_CPU_TEACHER ('small', 256x256 input).
   */
  config?: SamConfigName | SamEncoderConfig;
  checkpoint?: SamCheckpoint;
  /** Seed of the random initialisation without a checkpoint (default 0). */
  seed?: number;
  /** Side of the encoder input in pixels (default the config's imageSize). */
  imageSize?: number;
  /**
   * Intensities mapped to 0-255: per slice (default, as SAM scales each
   * image), the volume's min and max, or a fixed [low, high].
   */
  intensityRange?: 'slice' | 'volume' | readonly [number, number];
  /** Slices per encoder call (default: as many as fit, at most 16). */
  batchSize?: number;
}

/** Origin of a set of teacher features, for logs and reports. */
export interface TeacherInfo {
  /** RANDOM_TEACHER, or "SAM <config> (<weights identity>)". */
  teacher: string;
  /** True when no checkpoint was loaded. */
  randomInit: boolean;
  config: string;
  /** Checkpoint identity, or 'random-seed-N'. */
  weights: string;
  imageSize: number;
  /** Side of each slice's feature map (imageSize / patch size). */
  featureSize: number;
  channels: number;
  intensityRange: string;
}

/**
 * A frozen SAM image encoder with its preprocessing. Create it with
 * createSamTeacher().
 */
export class SamTeacher {
  constructor(
    readonly encoder: SamImageEncoder,
    readonly info: TeacherInfo,
    readonly intensityRange: SamTeacherOptions['intensityRange'],
    readonly batchSize: number | undefined,
  ) {}

  /**
   * Encodes gray slices [N, 1, H, W] into features [N, C, featureSize,
   * featureSize], with no gradient. `range` defaults to the teacher's
   * intensity range. A teacher set to 'volume' needs it given, because the
   * slices alone do not tell the volume's range.
   */
  encodeSlices(slices: Tensor, range?: IntensityRange): Tensor {
    const configured = this.intensityRange ?? 'slice';
    if (range === undefined && configured === 'volume') {
      throw new RangeError(
        "SamTeacher.encodeSlices: the teacher maps the volume's intensity " +
          'range to 0-255; pass that range as [low, high]',
      );
    }
    const resolved = range ?? (configured as IntensityRange);
    return noGrad(() =>
      tidy(() => {
        const input = samPreprocess(slices, {
          imageSize: this.info.imageSize,
          intensityRange: resolved,
        });
        return this.encoder.forward(input);
      }),
    );
  }

  dispose(): void {
    this.encoder.dispose();
  }
}

/**
 * Builds the teacher: the encoder of the checkpoint's (or the given)
 * config, with the checkpoint's weights or, without one, SAM's random
 * initialisation from `seed`. A random teacher logs a warning and is marked
 * RANDOM_TEACHER in its info, which every later log and report repeats.
 */
export function createSamTeacher(options: SamTeacherOptions = {}): SamTeacher {
  const { checkpoint } = options;
  const config = samConfig(
    options.config ??
      (checkpoint ? inferSamConfig(checkpoint.tensors) : DEFAULT_CPU_TEACHER),
  );
  const seed = options.seed ?? 0;
  const encoder = new SamImageEncoder(config, { seed });
  encoder.eval().setRequiresGrad(false);
  if (checkpoint) {
    loadWeights(encoder, checkpoint.tensors, {
      mapping: SAM_IMAGE_ENCODER_KEYS,
    });
  }
  const imageSize = options.imageSize ?? config.imageSize;
  if (!Number.isInteger(imageSize) || imageSize % config.patchSize !== 0) {
    encoder.dispose();
    throw new RangeError(
      `createSamTeacher: imageSize ${imageSize} must be a multiple of the ` +
        `patch size ${config.patchSize}`,
    );
  }
  const range = options.intensityRange ?? 'slice';
  const weights = checkpoint ? checkpoint.identity : `random-seed-${seed}`;
  const info: TeacherInfo = {
    teacher: checkpoint ? `SAM ${config.name} (${weights})` : RANDOM_TEACHER,
    randomInit: !checkpoint,
    config: config.name,
    weights,
    imageSize,
    featureSize: imageSize / config.patchSize,
    channels: config.outChannels,
    intensityRange: typeof range === 'string' ? range : `[${range.join(', ')}]`,
  };
  if (!checkpoint) {
    log.warn(
      `teacher: ${RANDOM_TEACHER}, config ${config.name}, seed ${seed}; ` +
        'distillation learns from untrained features',
    );
  }
  return new SamTeacher(encoder, info, range, options.batchSize);
}

/**
 * Returns 'sha256:<hex>' of checkpoint file bytes, the weights identity
 * that cache keys use.
 */
export async function checkpointIdentity(bytes: Uint8Array): Promise<string> {
  return `sha256:${await sha256Hex([bytes])}`;
}

async function sha256Hex(parts: readonly Uint8Array[]): Promise<string> {
  let length = 0;
  for (const part of parts) length += part.length;
  const joined = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.length;
  }
  // WebCrypto: globalThis.crypto in browsers and in Node 19 and later.
  const digest = await globalThis.crypto.subtle.digest('SHA-256', joined);
  return [...new Uint8Array(digest)]
    .map((byte) => byte.toString(16).padStart(2, '0'))
    .join('');
}

/**
 * Returns the largest binding one slice needs inside the encoder, in bytes:
 * the input image, the MLP hidden activations and the qkv projection of
 * the padded windows or of the whole grid. Attention scores are tiled
 * separately (see attend()).
 */
export function encoderBytesPerSlice(
  config: SamEncoderConfig,
  imageSize: number,
): number {
  const grid = imageSize / config.patchSize;
  const tokens = grid * grid;
  const window = config.windowSize;
  const paddedSide = window > 0 ? Math.ceil(grid / window) * window : grid;
  const qkvTokens = Math.max(tokens, paddedSide * paddedSide);
  return 4 * Math.max(
    3 * imageSize * imageSize,
    tokens * mlpHiddenDim(config),
    qkvTokens * 3 * config.embedDim,
  );
}

// Cap on the slices per encoder call when the memory estimate allows
// more, which keeps progress reports frequent and peak memory moderate.
const MAX_AUTO_BATCH = 16;

function batchSizeFor(teacher: SamTeacher): number {
  if (teacher.batchSize !== undefined) return teacher.batchSize;
  const limit = deviceInfo().limits.maxStorageBufferBindingSize;
  const perSlice = encoderBytesPerSlice(
    teacher.encoder.config,
    teacher.info.imageSize,
  );
  return Math.max(1, Math.min(MAX_AUTO_BATCH, Math.floor(limit / perSlice)));
}

/** Teacher features of one volume, as stored in a cache. */
export interface CachedTeacherFeatures {
  /** Row-major values of shape `shape`. */
  data: Float32Array;
  /** [C, D, featureSize, featureSize]. */
  shape: number[];
  meta: TeacherFeatureMeta;
}

/** A store of teacher features by cache key (see DiskFeatureCache). */
export interface TeacherFeatureCache {
  /** Returns the entry of `key`, or null when there is none. */
  read(key: string): Promise<CachedTeacherFeatures | null>;
  write(key: string, entry: CachedTeacherFeatures): Promise<void>;
}

/** Metadata of extracted features: the teacher and the volume. */
export interface TeacherFeatureMeta extends TeacherInfo {
  /** Number of axial slices D. */
  slices: number;
  /** [H, W] of each slice. */
  sliceShape: [number, number];
  /**
   * [rows, columns] of each feature map that cover slice content; the rest
   * of the featureSize x featureSize map comes from the padding.
   */
  validSize: [number, number];
  /** Hex SHA-256 of the volume, teacher and preprocessing. */
  cacheKey: string;
}

export interface ExtractOptions {
  cache?: TeacherFeatureCache;
  /**
   * Called after each batch of slices with the slices done and the total.
   * Not called when the features come from the cache.
   */
  onProgress?: (done: number, total: number) => void;
}

export interface TeacherFeatures {
  /** [C, D, featureSize, featureSize] on the device. */
  features: Tensor;
  /** The same values on the host. */
  data: Float32Array;
  meta: TeacherFeatureMeta;
  /** True when the features were read from the cache. */
  fromCache: boolean;
}

function checkVolume(volume: Tensor): void {
  if (volume.rank !== 5 || volume.shape[0] !== 1 || volume.shape[1] !== 1) {
    throw new RangeError(
      `extractTeacherFeatures: volume ${formatShape(volume.shape)} must be ` +
        '[1, 1, D, H, W] (one single-channel volume)',
    );
  }
}

/** Returns the intensity range of the preprocessing for this volume. */
function intensityRangeFor(
  teacher: SamTeacher,
  data: Float32Array,
): IntensityRange {
  const range = teacher.intensityRange ?? 'slice';
  if (range !== 'volume') return range;
  let low = Infinity;
  let high = -Infinity;
  for (const value of data) {
    if (value < low) low = value;
    if (value > high) high = value;
  }
  // A constant volume still needs high > low: every slice then maps to 0.
  return [low, high > low ? high : low + 1];
}

/**
 * Returns the cache key of a volume's features: the hex SHA-256 of the
 * feature format, the full teacher config and info, the volume shape and
 * the volume's float32 bytes.
 */
export async function teacherCacheKey(
  teacher: SamTeacher,
  shape: readonly number[],
  data: Float32Array,
): Promise<string> {
  const header = JSON.stringify({
    format: FEATURE_FORMAT,
    config: teacher.encoder.config,
    info: teacher.info,
    shape,
  });
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return sha256Hex([new TextEncoder().encode(header), bytes]);
}

function matchesCache(
  entry: CachedTeacherFeatures,
  shape: readonly number[],
): boolean {
  const size = shape.reduce((n, d) => n * d, 1);
  return (
    entry.data.length === size &&
    entry.shape.length === shape.length &&
    entry.shape.every((d, i) => d === shape[i])
  );
}

/**
 * Encodes every axial slice volume[0, 0, z] of a volume [1, 1, D, H, W]
 * with the teacher, in batches that fit the device's binding limit, and
 * stacks the maps into features [C, D, featureSize, featureSize]. With a
 * cache, an entry of the same key is returned instead, and new features
 * are written to it.
 * NOTE: for vit_b at 1024 each slice gives 4 MiB of features, so about 32
 * slices fill one 128 MiB binding. Kernels cannot bind a larger `features`
 * tensor whole, and the host copy `data` is the way to slice it.
 */
export async function extractTeacherFeatures(
  teacher: SamTeacher,
  volume: Tensor,
  options: ExtractOptions = {},
): Promise<TeacherFeatures> {
  checkVolume(volume);
  const [, , depth, height, width] = volume.shape;
  const { info } = teacher;
  const size = info.featureSize;
  const shape = [info.channels, depth, size, size];
  const volumeData = await volume.toArray();
  const cacheKey = await teacherCacheKey(teacher, volume.shape, volumeData);
  const [contentH, contentW] = resizedShape(height, width, info.imageSize);
  const patch = teacher.encoder.config.patchSize;
  const meta: TeacherFeatureMeta = {
    ...info,
    slices: depth,
    sliceShape: [height, width],
    validSize: [Math.ceil(contentH / patch), Math.ceil(contentW / patch)],
    cacheKey,
  };

  const cached = options.cache ? await options.cache.read(cacheKey) : null;
  if (cached && matchesCache(cached, shape)) {
    log.info(`teacher: features of ${cacheKey.slice(0, 12)} read from cache`);
    const features = tensor(cached.data, shape);
    return { features, data: cached.data, meta, fromCache: true };
  }

  const data = await encodeVolume(teacher, volume, volumeData, options);
  if (options.cache) {
    await options.cache.write(cacheKey, { data, shape, meta });
  }
  return { features: tensor(data, shape), data, meta, fromCache: false };
}

/** Encodes the slices batch by batch into host data [C, D, h, w]. */
async function encodeVolume(
  teacher: SamTeacher,
  volume: Tensor,
  volumeData: Float32Array,
  options: ExtractOptions,
): Promise<Float32Array> {
  const [, , depth, height, width] = volume.shape;
  const { channels, featureSize } = teacher.info;
  const plane = featureSize * featureSize;
  const data = new Float32Array(channels * depth * plane);
  const range = intensityRangeFor(teacher, volumeData);
  const batch = batchSizeFor(teacher);
  for (let start = 0; start < depth; start += batch) {
    const count = Math.min(batch, depth - start);
    const maps = tidy(() => {
      // Slices z of [1, 1, D, H, W] are contiguous: [count, 1, H, W].
      const slab = narrow(volume, 2, start, count);
      const slices = reshape(slab, [count, 1, height, width]);
      return teacher.encodeSlices(slices, range);
    });
    const values = await maps.toArray();
    maps.dispose();
    // [count, C, h, w] into [C, D, h, w] at depth start.
    for (let i = 0; i < count; i++) {
      for (let c = 0; c < channels; c++) {
        const from = (i * channels + c) * plane;
        const to = (c * depth + start + i) * plane;
        data.set(values.subarray(from, from + plane), to);
      }
    }
    options.onProgress?.(start + count, depth);
  }
  return data;
}
