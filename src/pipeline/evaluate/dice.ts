// Hard Dice overlap of two label maps, one score per requested label.
//
// Layout: label maps are flat arrays of integer label ids over the same
// grid, in the same voxel order (row-major [D, H, W] in this project).

/** A flat label map: integer label ids, one per voxel. */
export type LabelMap = ArrayLike<number>;

// Label ids below this bound are looked up in a table rather than a Map.
const TABLE_LIMIT = 1 << 16;

/**
 * @internal Throws unless both label maps have the same voxel count. `op`
 * names the caller in the message.
 */
export function checkSameLength(
  op: string,
  prediction: LabelMap,
  truth: LabelMap,
): void {
  if (prediction.length !== truth.length) {
    throw new RangeError(
      `${op}: prediction has ${prediction.length} voxels but truth has ` +
        `${truth.length}; pass two label maps on the same grid (resample ` +
        'one onto the other first)',
    );
  }
}

function checkLabelIds(op: string, labels: readonly number[]): void {
  const seen = new Set<number>();
  for (const label of labels) {
    if (!Number.isInteger(label)) {
      throw new RangeError(`${op}: label ${label} must be an integer id`);
    }
    if (seen.has(label)) {
      throw new RangeError(
        `${op}: label ${label} is listed twice; list each label once`,
      );
    }
    seen.add(label);
  }
}

/** Builds a map from a label id to its position in `labels`, -1 if absent. */
function labelIndexer(labels: readonly number[]): (value: number) => number {
  const table = new Int32Array(TABLE_LIMIT).fill(-1);
  const others = new Map<number, number>();
  labels.forEach((label, index) => {
    if (label >= 0 && label < TABLE_LIMIT) table[label] = index;
    else others.set(label, index);
  });
  return (value) =>
    value >= 0 && value < TABLE_LIMIT && Number.isInteger(value)
      ? table[value]
      : (others.get(value) ?? -1);
}

/**
 * Computes the Dice score 2 |A and B| / (|A| + |B|) of each label in
 * `labels`, where A is the set of voxels with that id in `prediction` and B
 * in `truth`, in one pass over the voxels. Returns one score per label, in
 * the order of `labels`.
 *
 * A label absent from both maps scores NaN, which `summarize` leaves out
 * of every mean (it counts as neither 0 nor 1). A label present in only
 * one map scores 0. Only the listed labels are scored, so background (0)
 * counts only when `labels` contains 0.
 *
 * @example
 * const scores = diceScores(predicted, truth, [1, 2, 3]); // [0.91, NaN, 0.8]
 */
export function diceScores(
  prediction: LabelMap,
  truth: LabelMap,
  labels: readonly number[],
): number[] {
  const op = 'diceScores';
  checkSameLength(op, prediction, truth);
  checkLabelIds(op, labels);

  const indexOf = labelIndexer(labels);
  const predictedCount = new Float64Array(labels.length);
  const truthCount = new Float64Array(labels.length);
  const overlap = new Float64Array(labels.length);
  for (let voxel = 0; voxel < prediction.length; voxel++) {
    const predicted = indexOf(prediction[voxel]);
    const actual = indexOf(truth[voxel]);
    if (predicted >= 0) predictedCount[predicted] += 1;
    if (actual >= 0) truthCount[actual] += 1;
    if (predicted >= 0 && predicted === actual) overlap[predicted] += 1;
  }

  return labels.map((_, index) => {
    const total = predictedCount[index] + truthCount[index];
    return total === 0 ? NaN : (2 * overlap[index]) / total;
  });
}
