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
