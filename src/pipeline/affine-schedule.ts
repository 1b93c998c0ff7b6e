// The coarse-to-fine schedule of alignAffine: which levels run, and the
// Adam steps, learning rate and NCC window of each, checked before any
// work starts.

export interface AlignLevelOptions {
  /**
   * Downsampling factor of each level, coarse to fine (default [4, 2, 1]).
   * Level f averages f^3 blocks with avgPool3d. A level with fewer than 8
   * voxels along an axis (of an axis that has 8 or more) is skipped.
   */
  levels?: readonly number[];
  /** Adam steps per level, one number or one each (default [80, 40, 15]). */
  iterations?: number | readonly number[];
  /**
   * Peak Adam learning rate per level, in the normalised units described
   * at `alignAffine` (default [0.02, 0.01, 0.004]). Within a level it
   * decays by a half cosine to a tenth of its peak.
   */
  learningRate?: number | readonly number[];
  /**
   * NCC window edge per level (odd). By default 9, 7 and 5 voxels from the
   * finest level up, each capped by the level's size.
   */
  window?: number | readonly number[];
}

/** One level to run, with its settings resolved. */
export interface LevelSetting {
  factor: number;
  iterations: number;
  learningRate: number;
  window: number;
}

const DEFAULT_LEVELS = [4, 2, 1];
const DEFAULT_ITERATIONS = [80, 40, 15];
const DEFAULT_LEARNING_RATES = [0.02, 0.01, 0.004];
const DEFAULT_WINDOWS = [5, 7, 9];
const MIN_LEVEL_SIZE = 8;

/**
 * Returns the value of a per-level option for level `index` of `count`:
 * `defaults` (one per default level, taken from the finest end) when the
 * option is unset.
 */
function levelValue(
  op: string,
  name: string,
  value: number | readonly number[] | undefined,
  defaults: readonly number[],
  index: number,
  count: number,
): number {
  if (value === undefined) {
    return defaults[Math.max(0, defaults.length - count + index)];
  }
  if (typeof value === 'number') return value;
  if (value.length !== count) {
    throw new RangeError(
      `${op}: ${name} has ${value.length} values but there are ${count} ` +
        'levels; give one number or one per level',
    );
  }
  return value[index];
}

/** Checks the values of level `index`; `op` names the caller. */
function checkSetting(op: string, index: number, setting: LevelSetting): void {
  const { iterations, learningRate, window } = setting;
  if (!Number.isInteger(iterations) || iterations < 0) {
    throw new RangeError(
      `${op}: iterations ${iterations} of level ${index} must be a ` +
        'non-negative integer',
    );
  }
  if (!(learningRate >= 0) || !Number.isFinite(learningRate)) {
    throw new RangeError(
      `${op}: learningRate ${learningRate} of level ${index} must be a ` +
        'non-negative number',
    );
  }
  if (!Number.isInteger(window) || window < 1 || window % 2 === 0) {
    throw new RangeError(
      `${op}: window ${window} of level ${index} must be an odd positive ` +
        'integer',
    );
  }
}

/**
 * Returns the levels to run on a grid of `shape` [D, H, W], coarse to
 * fine, with their settings. The finest level runs even when every level
 * is too small. Each window is capped by the largest odd size that fits
 * its level's grid.
 */
export function levelSettings(
  op: string,
  options: AlignLevelOptions,
  shape: readonly number[],
): LevelSetting[] {
  const levels = options.levels ?? DEFAULT_LEVELS;
  const valid = levels.every((f) => Number.isInteger(f) && f >= 1);
  if (levels.length === 0 || !valid) {
    throw new RangeError(
      `${op}: levels ${JSON.stringify(levels)} must be positive integer ` +
        'downsampling factors, coarse to fine, such as [4, 2, 1]',
    );
  }
  const count = levels.length;
  const settings = levels.map((factor, index) => {
    const value = (
      name: string,
      given: number | readonly number[] | undefined,
      defaults: readonly number[],
    ) => levelValue(op, name, given, defaults, index, count);
    const setting: LevelSetting = {
      factor,
      iterations: value('iterations', options.iterations, DEFAULT_ITERATIONS),
      learningRate: value(
        'learningRate',
        options.learningRate,
        DEFAULT_LEARNING_RATES,
      ),
      window: value('window', options.window, DEFAULT_WINDOWS),
    };
    checkSetting(op, index, setting);
    const levelShape = shape.map((size) => Math.floor(size / factor));
    const odd = levelShape.map((size) => (size % 2 === 1 ? size : size - 1));
    setting.window = Math.min(setting.window, ...odd);
    return { setting, levelShape };
  });

  const kept = settings.filter(({ levelShape }) =>
    levelShape.every(
      (size, axis) => size >= Math.min(MIN_LEVEL_SIZE, shape[axis]),
    ),
  );
  const run = kept.length > 0 ? kept : settings.slice(-1);
  return run.map(({ setting }) => setting);
}
