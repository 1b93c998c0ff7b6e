// Argument checks shared by the evaluation metrics.

import type { Shape3 } from './distance-transform.js';

/**
 * Throws unless `shape` is three positive integers [D, H, W] whose product
 * is `length`, the voxel count of the array named `name`.
 */
export function checkShape(
  op: string,
  shape: readonly number[],
  length: number,
  name: string,
  valuesPerVoxel = 1,
): Shape3 {
  const valid =
    shape.length === 3 &&
    shape.every((size) => Number.isInteger(size) && size > 0);
  if (!valid) {
    throw new RangeError(
      `${op}: shape [${shape.join(', ')}] must be three positive integers ` +
        '[D, H, W]',
    );
  }
  const expected = valuesPerVoxel * shape[0] * shape[1] * shape[2];
  if (length !== expected) {
    throw new RangeError(
      `${op}: ${name} has ${length} values but shape [${shape.join(', ')}] ` +
        `needs ${expected}; pass the shape of the grid the array covers`,
    );
  }
  return [shape[0], shape[1], shape[2]];
}

/** Throws unless `spacingMm` is three positive finite numbers [D, H, W]. */
export function checkSpacing(op: string, spacingMm: readonly number[]): Shape3 {
  const valid =
    spacingMm.length === 3 &&
    spacingMm.every((size) => Number.isFinite(size) && size > 0);
  if (!valid) {
    throw new RangeError(
      `${op}: spacing [${spacingMm.join(', ')}] must be three positive ` +
        'voxel sizes in mm, ordered [D, H, W] like the shape',
    );
  }
  return [spacingMm[0], spacingMm[1], spacingMm[2]];
}
