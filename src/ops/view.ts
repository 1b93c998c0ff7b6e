// Views: reshapes that share storage with their source.

import { record } from '../autograd/node.js';
import { formatShape, shapeSize, type Tensor } from '../tensor.js';

/**
 * Returns a tensor with the same data and a new shape. One dimension may
 * be -1 and is then inferred. No data moves: the result shares storage.
 */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const resolved = resolveShape(x, shape);
  const out = x.share(resolved);
  return record('reshape', out, [x], [], (g) => [reshapeNoGrad(g, x.shape)]);
}

function reshapeNoGrad(g: Tensor, shape: readonly number[]): Tensor {
  return g.share(shape);
}

function resolveShape(x: Tensor, shape: readonly number[]): number[] {
  const inferred = shape.filter((d) => d === -1).length;
  if (inferred > 1) {
    throw new RangeError(`reshape: shape ${formatShape(shape)} has more than one -1`);
  }
  const known = shapeSize(shape.filter((d) => d !== -1));
  const result = shape.map((d) => (d === -1 ? x.size / Math.max(known, 1) : d));
  if (
    result.some((d) => !Number.isInteger(d) || d < 0) ||
    shapeSize(result) !== x.size
  ) {
    throw new RangeError(
      `reshape: cannot view a tensor of shape ${formatShape(x.shape)} ` +
        `(${x.size} elements) as ${formatShape(shape)}`,
    );
  }
  return result;
}

/**
 * Inserts a size-1 axis at `axis` of the result (negative counts from the
 * end of the result, so -1 appends). A view, like reshape.
 */
export function unsqueeze(x: Tensor, axis: number): Tensor {
  const rank = x.rank + 1;
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
    throw new RangeError(
      `unsqueeze: axis ${axis} is out of range for shape ` +
        `${formatShape(x.shape)} (valid axes: ${-rank} to ${rank - 1})`,
    );
  }
  const at = axis < 0 ? axis + rank : axis;
  const shape = [...x.shape];
  shape.splice(at, 0, 1);
  return reshape(x, shape);
}

/**
 * Removes size-1 axes: the given ones (an error when one is not of size 1)
 * or every one when `axes` is omitted. A view, like reshape.
 */
export function squeeze(x: Tensor, axes?: number | readonly number[]): Tensor {
  const drop = new Set<number>();
  if (axes === undefined) {
    x.shape.forEach((dim, i) => {
      if (dim === 1) drop.add(i);
    });
  } else {
    for (const axis of typeof axes === 'number' ? [axes] : axes) {
      const at = axis < 0 ? axis + x.rank : axis;
      const valid = Number.isInteger(axis) && at >= 0 && at < x.rank;
      if (!valid || x.shape[at] !== 1) {
        throw new RangeError(
          `squeeze: axis ${axis} of shape ${formatShape(x.shape)} is not ` +
            'an axis of size 1',
        );
      }
      drop.add(at);
    }
  }
  const shape = x.shape.filter((_, i) => !drop.has(i));
  return reshape(x, shape);
}
