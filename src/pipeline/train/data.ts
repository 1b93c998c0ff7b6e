// The training data of the trainer: the atlas, the unlabelled scans, the
// teacher's features and the augmentation hook, with the seeded scan
// order and per-iteration generators.
//
// Layout: images [1, 1, D, H, W]; atlas labels [1, 1, D, H, W] class ids
// 0..K or one-hot [1, K + 1, D, H, W].

import { oneHot, type LabelVolume } from '../../ops/dice.js';
import { Random } from '../../random.js';
import { formatShape, keep, tensor, Tensor } from '../../tensor.js';

/** Values on the host with their row-major shape. */
export interface HostArray {
  data: Float32Array;
  shape: readonly number[];
}

/** Scans loaded on demand; the trainer uploads and frees each one. */
export interface ScanLoader {
  count: number;
  load(index: number): HostArray | Promise<HostArray>;
}

/**
 * Teacher features f_sam of scan `index` (whose image is `image`):
 * [256, D', h, w] or [1, 256, D', h, w]. A returned Tensor stays the
 * caller's (for example a cache) and is not disposed; a HostArray is
 * uploaded for the iteration and freed after it.
 */
export type TeacherSource = (
  index: number,
  image: Tensor,
) => Tensor | HostArray | Promise<Tensor | HostArray>;

/** Generator and role handed to the augmentation hook. */
export interface AugmentContext {
  /** Seeded from the trainer's seed and the iteration. */
  random: Random;
  role: 'atlas' | 'target';
}

/**
 * Augmentation hook, called synchronously for the atlas (with its labels)
 * and for the target (labels undefined) of every iteration. It returns
 * the augmented image and, for the atlas, labels as a class-id map
 * [1, 1, D, H, W] (warp it with nearest interpolation) or as one-hot
 * probabilities [1, K + 1, D, H, W]. Tensors it creates are freed at the
 * end of the iteration.
 */
export type Augment = (
  image: Tensor,
  labels: Tensor | undefined,
  iteration: number,
  context: AugmentContext,
) => { image: Tensor; labels?: Tensor };

export interface TrainingData {
  atlas: {
    /** x_a [1, 1, D, H, W]. */
    image: Tensor;
    /** y_a as a class-id map or one-hot, on the device or the host. */
    labels: Tensor | LabelVolume;
  };
  /** The unlabelled scans x_u: device tensors (the caller's) or a loader. */
  scans: readonly Tensor[] | ScanLoader;
  /** f_sam features per scan, required by the variants that distil. */
  teacher?: TeacherSource;
}

/** The atlas on the device, as the trainer keeps it. */
export interface PreparedAtlas {
  image: Tensor;
  /** The class-id map when one was given (the augmentation hook's input). */
  labelMap: Tensor | null;
  /** y_a one-hot [1, K + 1, D, H, W]. */
  oneHot: Tensor;
}

/** Checks the atlas and encodes its labels; the results are kept. */
export function prepareAtlas(
  op: string,
  atlas: TrainingData['atlas'],
  numClasses: number,
): PreparedAtlas {
  const { image } = atlas;
  if (image.rank !== 5 || image.shape[0] !== 1 || image.shape[1] !== 1) {
    throw new RangeError(
      `${op}: atlas image ${formatShape(image.shape)} must be [1, 1, D, H, W]`,
    );
  }
  const labels = atlas.labels;
  const spatial = image.shape.slice(2);
  const labelSpatial = labels.shape.slice(labels.shape.length - 3);
  const channels = labels.shape.length === 5 ? labels.shape[1] : 1;
  const matches = labelSpatial.every((size, axis) => size === spatial[axis]);
  if (!matches || (channels !== 1 && channels !== numClasses)) {
    throw new RangeError(
      `${op}: atlas labels ${formatShape(labels.shape)} must be ` +
        `[1, 1, ${spatial.join(', ')}] class ids or [1, ${numClasses}, ` +
        `${spatial.join(', ')}] one-hot for atlas image ` +
        formatShape(image.shape),
    );
  }
  if (channels === numClasses && labels instanceof Tensor) {
    return { image, labelMap: null, oneHot: keep(labels.share()) };
  }
  const labelMap =
    labels instanceof Tensor
      ? keep(labels.share())
      : keep(tensor(Float32Array.from(labels.data), [1, 1, ...spatial]));
  return { image, labelMap, oneHot: keep(oneHot(labelMap, numClasses)) };
}

/** Returns the number of scans in `scans`. */
export function scanCount(scans: TrainingData['scans']): number {
  return Array.isArray(scans) ? scans.length : (scans as ScanLoader).count;
}

/**
 * Returns scan `index` on the device and whether the trainer owns it
 * (and must dispose it after the iteration).
 */
export async function loadScan(
  op: string,
  scans: TrainingData['scans'],
  index: number,
): Promise<{ image: Tensor; owned: boolean }> {
  if (Array.isArray(scans)) return { image: scans[index], owned: false };
  const host = await (scans as ScanLoader).load(index);
  return { image: uploadHost(op, `scan ${index}`, host), owned: true };
}

/** Returns the teacher's features of scan `index` and whether they are owned. */
export async function loadTeacher(
  op: string,
  teacher: TeacherSource,
  index: number,
  image: Tensor,
): Promise<{ features: Tensor; owned: boolean }> {
  const result = await teacher(index, image);
  if (result instanceof Tensor) return { features: result, owned: false };
  const what = `teacher features of scan ${index}`;
  return { features: uploadHost(op, what, result), owned: true };
}

function uploadHost(op: string, what: string, host: HostArray): Tensor {
  const expected = host.shape.reduce((n, size) => n * size, 1);
  if (host.data.length !== expected) {
    throw new RangeError(
      `${op}: ${what} has ${host.data.length} values but shape ` +
        `${formatShape(host.shape)} needs ${expected}`,
    );
  }
  return tensor(host.data, host.shape);
}

/** Mixes a seed and two integers into a 32-bit generator seed. */
function mixSeed(seed: number, value: number, salt: number): number {
  let h = (seed ^ Math.imul(salt, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (value >>> 0), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

const ORDER_SALT = 0x0de7;
const AUGMENT_SALT = 0xa6e7;

/**
 * Returns the scan index of `iteration`: each epoch visits every scan
 * once, in an order shuffled by a generator seeded from (seed, epoch), or
 * in index order without shuffling. The order depends on nothing else, so
 * a resumed run visits the same scans.
 */
export function scanIndexAt(
  seed: number,
  iteration: number,
  count: number,
  shuffle: boolean,
): number {
  const epoch = Math.floor(iteration / count);
  const position = iteration % count;
  if (!shuffle) return position;
  const order = Array.from({ length: count }, (_, i) => i);
  const random = new Random(mixSeed(seed, epoch, ORDER_SALT));
  for (let i = count - 1; i > 0; i--) {
    const j = random.integer(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order[position];
}

/** The augmentation generator of `iteration`, seeded from (seed, iteration). */
export function iterationRandom(seed: number, iteration: number): Random {
  return new Random(mixSeed(seed, iteration, AUGMENT_SALT));
}
