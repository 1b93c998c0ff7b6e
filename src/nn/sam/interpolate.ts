// Resampling of learned tables (position embeddings, relative position
// tables) along one axis, as a matrix product with host-built weights. The
// tables are parameters, so the resampling must stay differentiable, and a
// product with a small [out, in] matrix is that and also shrinks a table.

import { matmul } from '../../ops/matmul.js';
import { reshape } from '../../ops/view.js';
import { formatShape, tensor, tidy, type Tensor } from '../../tensor.js';

/**
 * Returns the [outSize, inSize] row-major weights of PyTorch's linear
 * interpolation with align_corners false and no antialiasing
 * (F.interpolate mode 'linear' or 'bilinear' per axis). Output position o
 * samples the input at s = (o + 0.5) * inSize / outSize - 0.5, clamped to
 * be at least 0, and mixes the two neighbours floor(s) and floor(s) + 1
 * (the last index repeated at the upper edge).
 */
export function linearResampleWeights(
  inSize: number,
  outSize: number,
): Float32Array {
  const valid = (size: number) => Number.isInteger(size) && size >= 1;
  if (!valid(inSize) || !valid(outSize)) {
    throw new RangeError(
      `linearResampleWeights: sizes must be positive integers, got ` +
        `${inSize} -> ${outSize}`,
    );
  }
  const weights = new Float32Array(outSize * inSize);
  const ratio = inSize / outSize;
  for (let o = 0; o < outSize; o++) {
    const source = Math.max((o + 0.5) * ratio - 0.5, 0);
    const lower = Math.floor(source);
    const upper = Math.min(lower + 1, inSize - 1);
    const fraction = source - lower;
    weights[o * inSize + lower] += 1 - fraction;
    weights[o * inSize + upper] += fraction;
  }
  return weights;
}

/**
 * Resamples the rows of `table` [rows, ...] linearly to `rows` rows
 * (align_corners false). Differentiable in `table`.
 */
export function resampleRows(table: Tensor, rows: number): Tensor {
  if (table.rank < 1) {
    throw new RangeError(
      `resampleRows: table ${formatShape(table.shape)} needs at least one axis`,
    );
  }
  const inRows = table.shape[0];
  if (inRows === rows) return table;
  return tidy(() => {
    const rest = table.shape.slice(1);
    const weights = tensor(linearResampleWeights(inRows, rows), [rows, inRows]);
    const flat = reshape(table, [inRows, table.size / Math.max(inRows, 1)]);
    return reshape(matmul(weights, flat), [rows, ...rest]);
  });
}

/**
 * Resamples a channels-last grid `grid` [1, H, W, C] to [1, height, width,
 * C] with bilinear weights (align_corners false, no antialiasing), one
 * axis after the other. Differentiable in `grid`.
 */
export function resampleGrid(
  grid: Tensor,
  height: number,
  width: number,
): Tensor {
  if (grid.rank !== 4 || grid.shape[0] !== 1) {
    throw new RangeError(
      `resampleGrid: grid ${formatShape(grid.shape)} must be [1, H, W, C]`,
    );
  }
  const [, h, w, c] = grid.shape;
  if (h === height && w === width) return grid;
  return tidy(() => {
    // Rows: [height, H] x [H, W * C].
    const rows = resampleRows(reshape(grid, [h, w, c]), height);
    // Columns: [width, W] x [W, C] for each of the height rows.
    const columnWeights = tensor(linearResampleWeights(w, width), [width, w]);
    const resampled = w === width ? rows : matmul(columnWeights, rows);
    return reshape(resampled, [1, height, width, c]);
  });
}
