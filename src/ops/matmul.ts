// Matrix product with torch.matmul's broadcasting, and its backward rule.
//
// The kernels read either operand transposed in place (tuning.ts picks the
// kernel variant), so the backward products g b^T and a^T g cost the same
// as the forward one and copy nothing.

import { record } from '../autograd/node.js';
import { checkOutput } from '../debug.js';
import {
  MAX_BATCH_RANK,
  matmulKernel,
  type MatmulProblem,
} from '../kernels/matmul.js';
import { chooseVariant } from '../kernels/tuning.js';
import { formatShape, tidy, type Tensor } from '../tensor.js';
import { zeros } from './creation.js';
import { sumToShape } from './reduce.js';
import { broadcastStrides, checkRank } from './shape.js';
import { reshape } from './view.js';

export interface MatmulOptions {
  /** Read `a` (rank 2 or more) with its last two axes swapped. */
  transposeA?: boolean;
  /** Read `b` (rank 2 or more) with its last two axes swapped. */
  transposeB?: boolean;
}

function describe(name: string, t: Tensor, transposed: boolean): string {
  return `${name} ${formatShape(t.shape)}${transposed ? ' read transposed' : ''}`;
}

function product(shape: readonly number[]): number {
  return shape.reduce((p, d) => p * d, 1);
}

/**
 * Shapes of a product of operands of rank 2 or more, checked: the logical
 * sizes and the broadcast batch. Throws naming both shapes on a mismatch.
 */
function planProduct(
  op: string,
  a: Tensor,
  b: Tensor,
  transposeA: boolean,
  transposeB: boolean,
): MatmulProblem {
  checkRank(op, a);
  checkRank(op, b);
  const [aRows, aCols] = a.shape.slice(-2);
  const [bRows, bCols] = b.shape.slice(-2);
  const [m, k] = transposeA ? [aCols, aRows] : [aRows, aCols];
  const [kb, n] = transposeB ? [bCols, bRows] : [bRows, bCols];
  const pair = `${describe('a', a, transposeA)} and ${describe('b', b, transposeB)}`;

  if (k !== kb) {
    throw new RangeError(`${op}: ${pair}: inner dimensions ${k} and ${kb} differ`);
  }
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  const rank = Math.max(aBatch.length, bBatch.length);
  const batchShape: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = aBatch[aBatch.length - rank + i] ?? 1;
    const db = bBatch[bBatch.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new RangeError(
        `${op}: ${pair}: batch dimensions ${formatShape(aBatch)} and ` +
          `${formatShape(bBatch)} cannot be broadcast together`,
      );
    }
    batchShape.push(da === 1 ? db : da);
  }
  if (batchShape.length > MAX_BATCH_RANK) {
    throw new RangeError(
      `${op}: ${pair}: the batch has ${batchShape.length} dimensions, more ` +
        `than the ${MAX_BATCH_RANK} the kernels support`,
    );
  }

  const aStrides = broadcastStrides(aBatch, batchShape).map((s) => s * aRows * aCols);
  const bStrides = broadcastStrides(bBatch, batchShape).map((s) => s * bRows * bCols);
  return {
    m,
    n,
    k,
    transposeA,
    transposeB,
    batchShape,
    aBatchStrides: aStrides,
    bBatchStrides: bStrides,
  };
}

/**
 * @internal The product of operands of rank 2 or more, no autograd: out
 * [...batch, M, N]. When b contains a single matrix and a is read untransposed,
 * a's batch folds into M and one product runs on [batch * M, K].
 */
export function matmulNoGrad(
  op: string,
  a: Tensor,
  b: Tensor,
  transposeA = false,
  transposeB = false,
): Tensor {
  const problem = planProduct(op, a, b, transposeA, transposeB);
  const { m, n, k, batchShape } = problem;
  const outShape = [...batchShape, m, n];
  if (k === 0) return zeros(outShape);
  const batch = product(batchShape);
  if (batch > 1 && !transposeA && product(b.shape.slice(0, -2)) === 1) {
    const folded: MatmulProblem = {
      ...problem,
      m: batch * m,
      batchShape: [],
      aBatchStrides: [],
      bBatchStrides: [],
    };
    const flat = matmulKernel(op, chooseVariant(folded), folded, a, b);
    const out = flat.share(outShape);
    flat.dispose();
    return out;
  }
  return matmulKernel(op, chooseVariant(problem), problem, a, b);
}

/**
 * Sum over the batch of a_i^T x g_i (or g_i^T x a_i with `gFirst`) as one
 * product with K = batch * M: a [..., M, K] and g [..., M, N] are read as
 * single [batch * M, ...] matrices. Used for the gradient of a b that
 * broadcasts one matrix over a's batch.
 */
function batchSummedProduct(op: string, a: Tensor, g: Tensor, gFirst: boolean): Tensor {
  const rows = product(a.shape.slice(0, -1));
  const aFlat = a.share([rows, a.shape[a.rank - 1]], false);
  const gFlat = g.share([rows, g.shape[g.rank - 1]], false);
  try {
    return gFirst
      ? matmulNoGrad(op, gFlat, aFlat, true, false)
      : matmulNoGrad(op, aFlat, gFlat, true, false);
  } finally {
    aFlat.dispose();
    gFlat.dispose();
  }
}

/** Gradient of op(a) op(b) with respect to a, of a's shape. */
function gradientA(
  g: Tensor,
  a: Tensor,
  b: Tensor,
  transposeA: boolean,
  transposeB: boolean,
): Tensor {
  // d(op(a)) = g op(b)^T; with transposeA the gradient of a is its transpose.
  const full = transposeA
    ? matmulNoGrad('matmul backward', b, g, transposeB, true)
    : matmulNoGrad('matmul backward', g, b, false, !transposeB);
  const reduced = sumToShape(full, a.shape);
  if (reduced !== full) full.dispose();
  return reduced;
}

/** Gradient of op(a) op(b) with respect to b, of b's shape. */
function gradientB(
  g: Tensor,
  a: Tensor,
  b: Tensor,
  transposeA: boolean,
  transposeB: boolean,
): Tensor {
  const aBatch = product(a.shape.slice(0, -2));
  const outBatch = product(g.shape.slice(0, -2));
  if (!transposeA && outBatch > 1 && aBatch === outBatch && product(b.shape.slice(0, -2)) === 1) {
    const summed = batchSummedProduct('matmul backward', a, g, transposeB);
    const out = summed.share(b.shape);
    summed.dispose();
    return out;
  }
  // d(op(b)) = op(a)^T g; with transposeB the gradient of b is its transpose.
  const full = transposeB
    ? matmulNoGrad('matmul backward', g, a, true, transposeA)
    : matmulNoGrad('matmul backward', a, g, !transposeA, false);
  const reduced = sumToShape(full, b.shape);
  if (reduced !== full) full.dispose();
  return reduced;
}

function productOfMatrices(a: Tensor, b: Tensor, options: MatmulOptions): Tensor {
  const transposeA = options.transposeA ?? false;
  const transposeB = options.transposeB ?? false;
  const out = matmulNoGrad('matmul', a, b, transposeA, transposeB);
  checkOutput('matmul', out, [a, b]);
  return record('matmul', out, [a, b], [a, b], (g, [sa, sb]) => [
    a.requiresGrad ? gradientA(g, sa, sb, transposeA, transposeB) : null,
    b.requiresGrad ? gradientB(g, sa, sb, transposeA, transposeB) : null,
  ]);
}

/**
 * Matrix product a [..., M, K] x b [..., K, N] -> [..., M, N], with the
 * batch axes broadcast as in torch.matmul: [2,1,17,33] x [3,33,9] gives
 * [2,3,17,9]. A 1D a [K] is read as [1, K] and a 1D b [K] as [K, 1], and
 * the added axis is dropped from the result, so [K] x [K] is a scalar.
 * `transposeA` / `transposeB` read an operand of rank 2 or more with its
 * last two axes swapped, without a copy (a [..., K, M] with transposeA).
 *
 * Differentiable in both inputs; gradients of broadcast batch axes are
 * summed. Results are deterministic: each output adds its K products in
 * increasing k with fma, whichever kernel variant runs. NOTE: llvmpipe
 * evaluates WGSL fma as a multiply and an add, so its results can differ
 * in the last bits from an adapter that fuses them.
 *
 * @example
 * const y = matmul(x, weight, { transposeB: true }); // x [N, in], weight [out, in]
 */
export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  for (const [name, t, flag] of [
    ['a', a, options.transposeA],
    ['b', b, options.transposeB],
  ] as const) {
    if (t.rank === 0) {
      throw new RangeError(
        `matmul: ${name} ${formatShape(t.shape)} is a scalar; matmul needs ` +
          'operands of rank 1 or more (use mul to scale)',
      );
    }
    if (t.rank === 1 && flag) {
      throw new RangeError(
        `matmul: ${name} ${formatShape(t.shape)} is 1D and cannot be read ` +
          `transposed; transpose${name.toUpperCase()} needs rank 2 or more`,
      );
    }
  }
  if (a.rank >= 2 && b.rank >= 2) return productOfMatrices(a, b, options);

  // 1D operands: view them as matrices and drop the added axis afterwards.
  const aInner = options.transposeA ? a.shape[a.rank - 2] : a.shape[a.rank - 1];
  let bInner = b.shape[0];
  if (b.rank >= 2) bInner = options.transposeB ? b.shape[b.rank - 1] : b.shape[b.rank - 2];
  if (aInner !== bInner) {
    throw new RangeError(
      `matmul: ${describe('a', a, options.transposeA ?? false)} and ` +
        `${describe('b', b, options.transposeB ?? false)}: inner dimensions ` +
        `${aInner} and ${bInner} differ`,
    );
  }
  return tidy(() => {
    const a2 = a.rank === 1 ? reshape(a, [1, a.shape[0]]) : a;
    const b2 = b.rank === 1 ? reshape(b, [b.shape[0], 1]) : b;
    const out = productOfMatrices(a2, b2, options);
    const shape = [...out.shape];
    if (a.rank === 1) shape.splice(shape.length - 2, 1);
    if (b.rank === 1) shape.splice(shape.length - 1, 1);
    return reshape(out, shape);
  });
}
