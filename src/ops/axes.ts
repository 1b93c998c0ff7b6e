// Axis arguments of the reduction and layout ops: negative axes count from
// the end, and errors show the op, the axis and the tensor's shape.

import { formatShape } from '../tensor.js';

/** Resolves one possibly negative axis of `shape`; throws when out of range. */
export function resolveAxis(
  op: string,
  shape: readonly number[],
  axis: number,
): number {
  const rank = shape.length;
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
    let valid = `${-rank} to ${rank - 1}`;
    if (rank === 0) valid = 'none, the tensor has rank 0';
    throw new RangeError(
      `${op}: axis ${axis} is out of range for shape ${formatShape(shape)} ` +
        `(valid axes: ${valid})`,
    );
  }
  return axis < 0 ? axis + rank : axis;
}

/**
 * Resolves a list of axes, one axis, or every axis when undefined, to
 * sorted non-negative axes. Throws on an axis out of range or a repeat.
 */
export function resolveAxes(
  op: string,
  shape: readonly number[],
  axes: number | readonly number[] | undefined,
): number[] {
  if (axes === undefined) return [...shape.keys()];
  const list = typeof axes === 'number' ? [axes] : [...axes];
  const result = list.map((axis) => resolveAxis(op, shape, axis));
  const repeated = result.find((axis, i) => result.indexOf(axis) !== i);
  if (repeated !== undefined) {
    throw new RangeError(
      `${op}: axes ${formatShape(list)} of shape ${formatShape(shape)} ` +
        `name axis ${repeated} more than once`,
    );
  }
  return result.sort((a, b) => a - b);
}
