// Hard Dice overlap of two integer label maps, per label, on the host.
//
// Counting runs on the CPU in integers, so the result is exact and the same
// on every run and platform.

import type { LabelArray } from './dice.js';

export interface DiceScores {
  /**
   * Dice per requested label id, in the order given: 2 |A and B| / (|A| + |B|),
   * or null when the label occurs in neither map.
   */
  perLabel: Map<number, number | null>;
  /** Mean over the labels that occur in at least one map; null if none does. */
  mean: number | null;
}

// Label values below this bound are counted through a lookup table rather
// than a Map (most atlases number their structures below a few thousand).
const TABLE_LIMIT = 1 << 16;

function checkIds(op: string, labelIds: readonly number[]): void {
  const seen = new Set<number>();
  for (const id of labelIds) {
    if (!Number.isInteger(id)) {
      throw new RangeError(`${op}: label id ${id} must be an integer`);
    }
    if (seen.has(id)) {
      throw new RangeError(`${op}: label id ${id} is listed twice in labelIds`);
    }
    seen.add(id);
  }
}

/** Maps a label value to its position in labelIds, -1 for other values. */
function indexer(labelIds: readonly number[]): (value: number) => number {
  const table = new Int32Array(TABLE_LIMIT).fill(-1);
  const others = new Map<number, number>();
  labelIds.forEach((id, i) => {
    if (id >= 0 && id < TABLE_LIMIT) table[id] = i;
    else others.set(id, i);
  });
  return (value) => {
    if (value >= 0 && value < TABLE_LIMIT && Number.isInteger(value)) return table[value];
    return others.get(value) ?? -1;
  };
}

/**
 * Computes the hard Dice score per label of a predicted label map
 * `labelsA` against the truth `labelsB` (same length, same voxel order).
 * A label present in the truth but missing from the prediction scores 0,
 * as does a label predicted where the truth has none. A label absent from
 * both maps is reported as null and left out of the mean (it counts as
 * neither 0 nor 1).
 *
 * @example
 * const { perLabel, mean } = diceScore(predicted, atlasWarped, [1, 2, 3]);
 */
export function diceScore(
  labelsA: LabelArray,
  labelsB: LabelArray,
  labelIds: readonly number[],
): DiceScores {
  const op = 'diceScore';
  if (labelsA.length !== labelsB.length) {
    throw new RangeError(
      `${op}: labelsA has ${labelsA.length} voxels but labelsB has ` +
        `${labelsB.length}; both maps must cover the same grid`,
    );
  }
  checkIds(op, labelIds);
  const indexOf = indexer(labelIds);
  const countA = new Float64Array(labelIds.length);
  const countB = new Float64Array(labelIds.length);
  const overlap = new Float64Array(labelIds.length);
  for (let i = 0; i < labelsA.length; i++) {
    const a = indexOf(labelsA[i]);
    const b = indexOf(labelsB[i]);
    if (a >= 0) countA[a] += 1;
    if (b >= 0) countB[b] += 1;
    if (a >= 0 && a === b) overlap[a] += 1;
  }

  const perLabel = new Map<number, number | null>();
  let total = 0;
  let present = 0;
  labelIds.forEach((id, i) => {
    const size = countA[i] + countB[i];
    if (size === 0) {
      perLabel.set(id, null);
      return;
    }
    const dice = (2 * overlap[i]) / size;
    perLabel.set(id, dice);
    total += dice;
    present += 1;
  });
  return { perLabel, mean: present > 0 ? total / present : null };
}
