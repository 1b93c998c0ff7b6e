import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  backward,
  gradCheck,
  matmul,
  matmulOptions,
  matmulTuningSettled,
  tensor,
  tidy,
  tunedVariants,
  type Tensor,
} from '../src/index.js';
import {
  matmulKernel,
  variantName,
  variantUnsupported,
  vec4Allowed,
  type MatmulProblem,
  type MatmulVariant,
} from '../src/kernels/matmul.js';
import {
  allVariants,
  chooseVariant,
  cpuFallbackVariant,
  fallbackVariant,
  resetMatmulTuning,
  supportedVariants,
} from '../src/kernels/tuning.js';
import { matmulRef } from '../src/reference/matmul.js';
import type { NDArray } from '../src/reference/ndarray.js';
import { device, hostAndDevice } from './helpers.js';
import { sameBytes } from './environment.js';

beforeAll(device);

const defaults = { ...matmulOptions };
afterEach(() => {
  Object.assign(matmulOptions, defaults);
});

function absolute(x: NDArray): NDArray {
  return { shape: [...x.shape], data: x.data.map(Math.abs) };
}

/**
 * Asserts the float32 result is within the rounding bound of a float32 dot
 * product of K terms, fused or not: |got - ref| <= gamma_K * sum|a||b| per
 * element, gamma_K = K u / (1 - K u), u = 2^-24: the standard forward
 * error bound of a recursively summed dot product. The inputs are exact
 * float32 values and the float64 reference is exact to far better than
 * that. An indexing error breaks the bound by orders of magnitude.
 */
function expectRoundoff(got: Float32Array, ref: NDArray, bound: NDArray, k: number): void {
  expect(got.length, 'element count').toBe(ref.data.length);
  let worst = -Infinity;
  let worstAt = -1;
  for (let i = 0; i < got.length; i++) {
    const ku = Math.max(1, k) * 2 ** -24;
    const allowed = (ku / (1 - ku)) * bound.data[i] + 1e-30;
    const excess = Math.abs(got[i] - ref.data[i]) / allowed;
    if (!(excess <= worst)) {
      worst = Number.isNaN(excess) ? Infinity : excess;
      worstAt = i;
    }
  }
  const detail =
    worstAt >= 0
      ? `worst at ${worstAt}: got ${got[worstAt]}, expected ${ref.data[worstAt]}`
      : 'no elements';
  expect(worst, `error over the roundoff bound (${detail})`).toBeLessThanOrEqual(1);
}

interface Case {
  a: number[];
  b: number[];
  transposeA?: boolean;
  transposeB?: boolean;
}

async function checkOp(c: Case, seed: number): Promise<Tensor> {
  const [ah, a] = hostAndDevice(c.a, seed);
  const [bh, b] = hostAndDevice(c.b, seed + 1);
  const options = { transposeA: c.transposeA, transposeB: c.transposeB };
  const out = matmul(a, b, options);
  const ref = matmulRef(ah, bh, options);
  const bound = matmulRef(absolute(ah), absolute(bh), options);
  expect(out.shape).toEqual(ref.shape);
  const k = c.transposeA ? c.a[c.a.length - 2] : c.a[c.a.length - 1];
  expectRoundoff(await out.toArray(), ref, bound, k);
  a.dispose();
  b.dispose();
  return out;
}

describe('matmul reference', () => {
  it('matmulRef 2x2 by hand', () => {
    const out = matmulRef(
      { shape: [2, 2], data: Float64Array.from([1, 2, 3, 4]) },
      { shape: [2, 2], data: Float64Array.from([5, 6, 7, 8]) },
    );
    expect(out.shape).toEqual([2, 2]);
    expect(Array.from(out.data)).toEqual([19, 22, 43, 50]);
  });

  it('matmulRef transposed reads', () => {
    const a = { shape: [2, 3], data: Float64Array.from([1, 2, 3, 4, 5, 6]) };
    const b = { shape: [3, 2], data: Float64Array.from([1, 0, 0, 1, 1, 1]) };
    // a^T [3,2] x b^T [2,3]: a^T = [[1,4],[2,5],[3,6]], b^T = [[1,0,1],[0,1,1]].
    const out = matmulRef(a, b, { transposeA: true, transposeB: true });
    expect(out.shape).toEqual([3, 3]);
    expect(Array.from(out.data)).toEqual([1, 4, 5, 2, 5, 7, 3, 6, 9]);
  });
});

describe('matmul values', () => {
  const cases: [string, Case][] = [
    ['[3,5] x [5,7]', { a: [3, 5], b: [5, 7] }],
    ['[2,1,17,33] x [3,33,9] broadcast', { a: [2, 1, 17, 33], b: [3, 33, 9] }],
    ['[1,1] x [1,1]', { a: [1, 1], b: [1, 1] }],
    ['[67,33] x [33,70] past tile edges', { a: [67, 33], b: [33, 70] }],
    ['[4,3,13] x [13,6] folds the batch', { a: [4, 3, 13], b: [13, 6] }],
    ['[6,11] x [2,11,5] broadcasts a', { a: [6, 11], b: [2, 11, 5] }],
    ['[2,3,12,8] x [2,3,8,16] aligned', { a: [2, 3, 12, 8], b: [2, 3, 8, 16] }],
    ['[5,3]^T x [5,4] transposeA', { a: [5, 3], b: [5, 4], transposeA: true }],
    ['[3,5] x [4,5]^T transposeB', { a: [3, 5], b: [4, 5], transposeB: true }],
    ['[2,7,6]^T x [9,7]^T both', { a: [2, 7, 6], b: [9, 7], transposeA: true, transposeB: true }],
  ];
  cases.forEach(([name, c], i) => {
    it(`matmul ${name}`, async () => {
      (await checkOp(c, 10 * i)).dispose();
    });
  });

  it('matmul 1D operands follow torch.matmul', async () => {
    for (const [c, shape] of [
      [{ a: [5], b: [5] }, []],
      [{ a: [5], b: [5, 3] }, [3]],
      [{ a: [2, 4, 5], b: [5] }, [2, 4]],
      [{ a: [5], b: [3, 5, 2] }, [3, 2]],
    ] as [Case, number[]][]) {
      const out = await checkOp(c, 200);
      expect(out.shape).toEqual(shape);
      out.dispose();
    }
  });

  it('matmul with K = 0 gives zeros', async () => {
    const a = tensor(new Float32Array(0), [3, 0]);
    const b = tensor(new Float32Array(0), [0, 2]);
    const out = matmul(a, b);
    expect(out.shape).toEqual([3, 2]);
    expect(Array.from(await out.toArray())).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('matmul with M = 0 gives an empty result', async () => {
    const a = tensor(new Float32Array(0), [2, 0, 4]);
    const b = tensor(new Float32Array(8), [4, 2]);
    const out = matmul(a, b);
    expect(out.shape).toEqual([2, 0, 2]);
    expect((await out.toArray()).length).toBe(0);
  });
});

// Every variant the tuner can pick, forced, so a broken variant cannot hide
// behind the tuned choice. Untransposed and doubly transposed reads of the
// vec4 variants run every load path of both operands. The scalar variants
// share those paths and differ only in a_run and b_run, so they run
// untransposed, except the CPU fallback, which runs both. The mixed pairs
// use the same code, and the op tests and backward passes run them.
// Scalar variants run on odd shapes; vec4 variants need rows that are
// multiples of 4. Compiling one variant takes llvmpipe several seconds.
describe('matmul kernel variants', () => {
  const bothFlags: [boolean, boolean][] = [
    [false, false],
    [true, true],
  ];

  function problemFor(
    m: number,
    n: number,
    k: number,
    batch: number,
    transposeA: boolean,
    transposeB: boolean,
  ): MatmulProblem {
    const single = batch === 1;
    // b broadcasts over the batch when batch is 3, to cover stride 0.
    let bStride = k * n;
    if (batch === 3) bStride = 0;
    return {
      m,
      n,
      k,
      transposeA,
      transposeB,
      batchShape: single ? [] : [batch],
      aBatchStrides: single ? [] : [m * k],
      bBatchStrides: single ? [] : [bStride],
    };
  }

  async function checkVariant(
    variant: MatmulVariant,
    size: number[],
    flags: [boolean, boolean][],
    seed: number,
  ): Promise<void> {
    const [m, n, k, batch] = size;
    for (const [transposeA, transposeB] of flags) {
      const problem = problemFor(m, n, k, batch, transposeA, transposeB);
      const aMatrix = transposeA ? [k, m] : [m, k];
      const bMatrix = transposeB ? [n, k] : [k, n];
      const bBatch = batch === 3 ? 1 : batch;
      const [ah, a] = hostAndDevice([batch, ...aMatrix], seed);
      const [bh, b] = hostAndDevice([bBatch, ...bMatrix], seed + 1);
      const out = matmulKernel('matmul test', variant, problem, a, b);
      const options = { transposeA, transposeB };
      const ref = matmulRef(ah, bh, options);
      const bound = matmulRef(absolute(ah), absolute(bh), options);
      expectRoundoff(await out.toArray(), ref, bound, k);
      for (const t of [a, b, out]) t.dispose();
    }
  }

  for (const variant of allVariants()) {
    const name = variantName(variant);
    // Odd sizes past one tile for scalar reads; multiples of 4 for vec4.
    const size = variant.vec4 ? [68, 72, 36, 3] : [67, 70, 35, 3];
    // Both transposes for the scalar forms the CPU fallback may pick.
    const cpuForm = variant.form === 'subgroup' || variantName({ ...variant, vec4: true }) === 'blocked-8x16-vec4-wg64';
    const flags = variant.vec4 || cpuForm ? bothFlags : bothFlags.slice(0, 1);
    it(`variant ${name}`, { timeout: 600_000 }, async (context) => {
      // Whether the device runs it is known only once the device is up.
      if (variantUnsupported(variant) !== null) context.skip();
      await checkVariant(variant, size, flags, 300);
    });
  }

  it('subgroup variant over several workgroups per row of blocks', { timeout: 600_000 }, async (context) => {
    const shared = allVariants().find((v) => v.form === 'subgroup' && v.vec4);
    expect(shared).toBeDefined();
    if (variantUnsupported(shared!) !== null) context.skip();
    // 264 columns are 66 column blocks: two workgroups of 64 per row of
    // blocks, the second with 2 busy lanes; 44 rows end inside a block.
    await checkVariant(shared!, [44, 264, 12, 2], bothFlags, 310);
    await checkVariant({ ...shared!, vec4: false }, [45, 262, 13, 3], bothFlags.slice(0, 1), 320);
  });

  it('subgroup variant needs rowBlocks in multiples of 8', () => {
    const odd: MatmulVariant = {
      form: 'subgroup',
      vec4: false,
      rowBlocks: 4,
      colBlocks: 1,
      workgroupSize: 64,
    };
    expect(variantUnsupported(odd)).toMatch(/rowBlocks 4 is not a multiple of 8/);
    const problem = problemFor(16, 4, 4, 1, false, false);
    const a = tensor(new Float32Array(64), [16, 4]);
    const b = tensor(new Float32Array(16), [4, 4]);
    expect(() => matmulKernel('matmul test', odd, problem, a, b)).toThrow(
      /subgroup-16x4-scalar-wg64 cannot run here: rowBlocks 4/,
    );
    a.dispose();
    b.dispose();
  });

  it('vec4 variants reject unaligned operands', () => {
    const vec4 = allVariants().find((v) => v.vec4);
    expect(vec4).toBeDefined();
    const problem = problemFor(5, 7, 3, 1, false, false);
    expect(vec4Allowed(problem)).toBe(false);
    const a = tensor(new Float32Array(15), [5, 3]);
    const b = tensor(new Float32Array(21), [3, 7]);
    expect(() => matmulKernel('matmul test', vec4!, problem, a, b)).toThrow(
      /rows that are not multiples of 4/,
    );
  });

  it('all variants give the same bits', { timeout: 600_000 }, async () => {
    const seed = 400;
    const results: [string, Float32Array][] = [];
    for (const variant of supportedVariants()) {
      const problem = problemFor(36, 40, 44, 2, false, false);
      const [, a] = hostAndDevice([2, 36, 44], seed);
      const [, b] = hostAndDevice([2, 44, 40], seed + 1);
      const out = matmulKernel('matmul test', variant, problem, a, b);
      results.push([variantName(variant), await out.toArray()]);
      for (const t of [a, b, out]) t.dispose();
    }
    const [firstName, first] = results[0];
    for (const [name, values] of results.slice(1)) {
      const differing = values.findIndex((v, i) => !Object.is(v, first[i]));
      expect(differing, `${name} vs ${firstName}: first differing element`).toBe(-1);
    }
  });
});

describe('matmul determinism', () => {
  it('matmul repeats bitwise', async () => {
    const [, a] = hostAndDevice([3, 29, 41], 500);
    const [, b] = hostAndDevice([41, 23], 501);
    const first = await matmul(a, b).toArray();
    const second = await matmul(a, b).toArray();
    expect(sameBytes(second, first)).toBe(true);
  });

  it('matmul backward repeats bitwise', async () => {
    const gradients: Float32Array[][] = [];
    for (let run = 0; run < 2; run++) {
      const [, a] = hostAndDevice([2, 9, 7], 510);
      const [, b] = hostAndDevice([7, 5], 511);
      a.requiresGrad = true;
      b.requiresGrad = true;
      const loss = tidy(() => matmul(a, b).sum());
      backward(loss);
      gradients.push([await a.grad!.toArray(), await b.grad!.toArray()]);
      for (const t of [a, b, loss]) t.dispose();
    }
    for (const i of [0, 1]) {
      const same = sameBytes(gradients[1][i], gradients[0][i]);
      expect(same, `gradient ${i}`).toBe(true);
    }
  });
});

describe('matmul gradients', () => {
  const cases: [string, Case][] = [
    ['[3,5] x [5,4]', { a: [3, 5], b: [5, 4] }],
    ['[2,1,3,4] x [3,4,5] broadcast', { a: [2, 1, 3, 4], b: [3, 4, 5] }],
    ['[2,3,4] x [4,5] folded b', { a: [2, 3, 4], b: [4, 5] }],
    ['[3,4] x [2,4,5] broadcast a', { a: [3, 4], b: [2, 4, 5] }],
    ['[2,4,3]^T x [4,5] transposeA', { a: [2, 4, 3], b: [4, 5], transposeA: true }],
    ['[2,3,4] x [5,4]^T transposeB folded', { a: [2, 3, 4], b: [5, 4], transposeB: true }],
    ['[4,3]^T x [2,5,4]^T both', { a: [4, 3], b: [2, 5, 4], transposeA: true, transposeB: true }],
    ['[4] x [4,3] 1D a', { a: [4], b: [4, 3] }],
    ['[2,3,4] x [4] 1D b', { a: [2, 3, 4], b: [4] }],
  ];
  for (const [name, c] of cases) {
    it(`matmul gradients ${name}`, async () => {
      const options = { transposeA: c.transposeA, transposeB: c.transposeB };
      const result = await gradCheck(
        (a, b) => matmul(a, b, options),
        (a: NDArray, b: NDArray) => matmulRef(a, b, options),
        [{ shape: c.a }, { shape: c.b }],
        { rtol: 1e-3, atol: 1e-4 },
      );
      expect(result.ok, result.report).toBe(true);
    });
  }

  it('matmul gradient of one input only', async () => {
    const [, a] = hostAndDevice([3, 4], 600);
    const [, b] = hostAndDevice([4, 2], 601);
    b.requiresGrad = true;
    const loss = tidy(() => matmul(a, b).sum());
    backward(loss);
    expect(a.grad).toBeNull();
    // d(sum(a b))/db[k, j] = sum_i a[i, k], the same for every j.
    const columnSums = await tidy(() => a.sum(0)).toArray();
    const grad = await b.grad!.toArray();
    for (let k = 0; k < 4; k++) {
      expect(grad[2 * k]).toBeCloseTo(columnSums[k], 5);
      expect(grad[2 * k + 1]).toBeCloseTo(columnSums[k], 5);
    }
  });
});

describe('matmul bad input', () => {
  const zerosOf = (shape: number[]): Tensor =>
    tensor(new Float32Array(shape.reduce((p, d) => p * d, 1)), shape);

  it('matmul inner dimensions differ', () => {
    expect(() => matmul(zerosOf([2, 3]), zerosOf([4, 5]))).toThrow(
      'matmul: a [2,3] and b [4,5]: inner dimensions 3 and 4 differ',
    );
  });

  it('matmul inner dimensions differ when transposed', () => {
    expect(() => matmul(zerosOf([2, 3]), zerosOf([4, 5]), { transposeA: true })).toThrow(
      'matmul: a [2,3] read transposed and b [4,5]: inner dimensions 2 and 4 differ',
    );
  });

  it('matmul inner dimensions differ for 1D', () => {
    expect(() => matmul(zerosOf([3]), zerosOf([4]))).toThrow(
      'matmul: a [3] and b [4]: inner dimensions 3 and 4 differ',
    );
  });

  it('matmul batch dimensions do not broadcast', () => {
    expect(() => matmul(zerosOf([2, 3, 4]), zerosOf([5, 4, 6]))).toThrow(
      'matmul: a [2,3,4] and b [5,4,6]: batch dimensions [2] and [5] cannot be broadcast together',
    );
  });

  it('matmul scalar operand', () => {
    expect(() => matmul(zerosOf([]), zerosOf([3, 2]))).toThrow(
      'matmul: a [] is a scalar; matmul needs operands of rank 1 or more (use mul to scale)',
    );
  });

  it('matmul transposed 1D operand', () => {
    expect(() => matmul(zerosOf([3, 2]), zerosOf([2]), { transposeB: true })).toThrow(
      'matmul: b [2] is 1D and cannot be read transposed; transposeB needs rank 2 or more',
    );
  });

  it('matmul unknown forced variant', () => {
    matmulOptions.variant = 'blocked-3x3';
    expect(() => matmul(zerosOf([2, 2]), zerosOf([2, 2]))).toThrow(
      /matmul: matmulOptions.variant "blocked-3x3" is not a known variant/,
    );
  });
});

describe('matmul tuning', () => {
  function squareProblem(size: number): MatmulProblem {
    return {
      m: size,
      n: size,
      k: size,
      transposeA: false,
      transposeB: false,
      batchShape: [],
      aBatchStrides: [],
      bBatchStrides: [],
    };
  }

  it('matmul fallback without autotune', () => {
    resetMatmulTuning();
    matmulOptions.autotune = false;
    const large = squareProblem(1024);
    const chosen = chooseVariant(large);
    expect(variantName(chosen)).toBe(variantName(fallbackVariant(large)));
    expect(chosen.vec4).toBe(true);
    expect(allVariants().map(variantName)).toContain(variantName(chosen));
    expect(fallbackVariant(squareProblem(1023)).vec4).toBe(false);
    expect(tunedVariants().size).toBe(0);
  });

  it('CPU fallback keeps narrow products blocked', () => {
    matmulOptions.autotune = false;
    const narrow = { ...squareProblem(4), batchShape: [1000], aBatchStrides: [16], bBatchStrides: [16] };
    expect(variantName(cpuFallbackVariant(narrow))).toBe('blocked-8x16-vec4-wg64');
    // 1024 columns fill 4 workgroups of 64 lanes; 40 rows fill 62% of 2 blocks.
    const wide = { ...squareProblem(1024), m: 40 };
    const shared = allVariants().find((v) => v.form === 'subgroup' && v.vec4)!;
    const expected = variantUnsupported(shared) === null ? 'subgroup' : 'blocked';
    expect(cpuFallbackVariant(wide).form).toBe(expected);
    // Rows: 33 fill 52% of 2 blocks of 32, 16 fill half of one, 15 less.
    expect(cpuFallbackVariant({ ...squareProblem(1024), m: 33 }).form).toBe(expected);
    expect(cpuFallbackVariant({ ...squareProblem(1024), m: 16 }).form).toBe(expected);
    expect(cpuFallbackVariant({ ...squareProblem(1024), m: 15 }).form).toBe('blocked');
    // Columns: 252 are 63 blocks of 4, 98% of a workgroup; 124 are 31, 48%.
    expect(cpuFallbackVariant({ ...squareProblem(64), n: 252 }).form).toBe(expected);
    expect(cpuFallbackVariant({ ...squareProblem(64), n: 124 }).form).toBe('blocked');
  });

  it('matmul forced variant', () => {
    const scalar = allVariants().find((v) => !v.vec4)!;
    const vec4 = allVariants().find((v) => v.vec4)!;
    matmulOptions.variant = variantName(scalar);
    expect(variantName(chooseVariant(squareProblem(64)))).toBe(variantName(scalar));
    matmulOptions.variant = variantName(vec4);
    expect(variantName(chooseVariant(squareProblem(64)))).toBe(variantName(vec4));
    // Unaligned operands run the scalar form of a forced vec4 variant.
    const twin = variantName({ ...vec4, vec4: false });
    expect(variantName(chooseVariant(squareProblem(63)))).toBe(twin);
  });

  it('matmul autotune picks a variant and keeps results', async () => {
    resetMatmulTuning();
    matmulOptions.autotune = true;
    matmulOptions.minTuneFlops = 0;
    matmulOptions.tuneRuns = 1;
    // The same transposes and alignment as the variant tests, so the
    // candidates' pipelines are already compiled.
    const [ah, a] = hostAndDevice([36, 44], 700);
    const [bh, b] = hostAndDevice([44, 40], 701);
    const before = await matmul(a, b).toArray();
    await matmulTuningSettled();
    const choices = [...tunedVariants().values()];
    expect(choices.length).toBe(1);
    expect(allVariants().map(variantName)).toContain(choices[0]);
    const after = await matmul(a, b).toArray();
    expect(sameBytes(after, before)).toBe(true);
    const ref = matmulRef(ah, bh);
    const bound = matmulRef(absolute(ah), absolute(bh));
    expectRoundoff(after, ref, bound, 44);
  });

  it('matmul autotune started inside tidy', async () => {
    resetMatmulTuning();
    matmulOptions.autotune = true;
    matmulOptions.minTuneFlops = 0;
    matmulOptions.tuneRuns = 1;
    const [, a] = hostAndDevice([36, 44], 702);
    const [, b] = hostAndDevice([44, 40], 703);
    // The tuning's scratch operands are made in this scope and must outlive it.
    const product = tidy(() => matmul(a, b));
    await matmulTuningSettled();
    expect(tunedVariants().size).toBe(1);
    product.dispose();
  });
});
