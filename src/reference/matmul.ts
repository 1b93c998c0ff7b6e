// CPU reference of matmul: float64 loops with torch.matmul's broadcasting
// of batch dimensions and its rules for 1D operands.

import { broadcastShape } from './elementwise.js';
import { ravel, unravel, type NDArray } from './ndarray.js';

export interface MatmulRefOptions {
  /** Read `a` as its transpose: a is stored [..., K, M]. */
  transposeA?: boolean;
  /** Read `b` as its transpose: b is stored [..., N, K]. */
  transposeB?: boolean;
}

/** Offset of batch `index` (of the broadcast batch shape) in `x`'s data. */
function batchOffset(
  index: readonly number[],
  batchShape: readonly number[],
  matrixShape: readonly number[],
): number {
  const own = batchShape.length;
  const lead = index.length - own;
  const coords = batchShape.map((dim, d) => (dim === 1 ? 0 : index[lead + d]));
  const matrixSize = matrixShape[0] * matrixShape[1];
  return own === 0 ? 0 : ravel(coords, batchShape) * matrixSize;
}

/**
 * a [..., M, K] x b [..., K, N] -> [..., M, N] in float64, batch dimensions
 * broadcast. A 1D `a` is read as [1, K] and a 1D `b` as [K, 1]; the added
 * dimension is removed from the result, as torch.matmul does.
 */
export function matmulRef(
  a: NDArray,
  b: NDArray,
  options: MatmulRefOptions = {},
): NDArray {
  const aShape = a.shape.length === 1 ? [1, a.shape[0]] : a.shape;
  const bShape = b.shape.length === 1 ? [b.shape[0], 1] : b.shape;
  const aMatrix = aShape.slice(-2);
  const bMatrix = bShape.slice(-2);
  const [m, k] = options.transposeA ? [aMatrix[1], aMatrix[0]] : aMatrix;
  const [kb, n] = options.transposeB ? [bMatrix[1], bMatrix[0]] : bMatrix;
  if (k !== kb) {
    throw new RangeError(`matmulRef: inner dimensions ${k} and ${kb} differ`);
  }

  const aBatch = aShape.slice(0, -2);
  const bBatch = bShape.slice(0, -2);
  const batchShape = broadcastShape(aBatch, bBatch);
  const batches = batchShape.reduce((p, d) => p * d, 1);
  const out = new Float64Array(batches * m * n);
  for (let batch = 0; batch < batches; batch++) {
    const index = unravel(batch, batchShape);
    const aBase = batchOffset(index, aBatch, aMatrix);
    const bBase = batchOffset(index, bBatch, bMatrix);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let total = 0;
        for (let p = 0; p < k; p++) {
          const av = options.transposeA ? a.data[aBase + p * m + i] : a.data[aBase + i * k + p];
          const bv = options.transposeB ? b.data[bBase + j * k + p] : b.data[bBase + p * n + j];
          total += av * bv;
        }
        out[(batch * m + i) * n + j] = total;
      }
    }
  }

  const shape = [...batchShape, m, n];
  if (a.shape.length === 1) shape.splice(shape.length - 2, 1);
  if (b.shape.length === 1) shape.splice(shape.length - 1, 1);
  return { shape, data: out };
}
