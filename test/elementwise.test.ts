import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  NonFiniteError,
  Tensor,
  abs,
  add,
  clamp,
  div,
  eq,
  exp,
  ge,
  gelu,
  gradCheck,
  gt,
  le,
  leakyRelu,
  liveTensorCount,
  log,
  lt,
  maximum,
  minimum,
  mul,
  ne,
  neg,
  pow,
  relu,
  scale,
  setDebugChecks,
  sigmoid,
  sqrt,
  sub,
  sum,
  sync,
  tanh,
  tensor,
  tidy,
  where,
  zeros,
  type Operand,
} from '../src/index.js';
import { Random } from '../src/random.js';
import * as ref from '../src/reference/elementwise.js';
import type { NDArray } from '../src/reference/ndarray.js';
import { device, expectClose } from './helpers.js';

beforeAll(device);

afterEach(() => setDebugChecks({ nonFinite: false }));

// ---- input values (float32-representable doubles) ----

type Values = (shape: readonly number[], seed: number) => Float64Array;

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

function generate(shape: readonly number[], seed: number, draw: (random: Random) => number): Float64Array {
  const random = new Random(seed);
  return Float64Array.from({ length: sizeOf(shape) }, () => Math.fround(draw(random)));
}

const normal =
  (spread = 1): Values =>
  (shape, seed) =>
    generate(shape, seed, (random) => spread * random.normal());

const uniform =
  (low: number, high: number): Values =>
  (shape, seed) =>
    generate(shape, seed, (random) => low + (high - low) * random.uniform());

/** Magnitudes in [low, high] with random signs: keeps away from kinks at 0. */
const awayFromZero =
  (low: number, high: number): Values =>
  (shape, seed) =>
    generate(shape, seed, (random) => {
      const magnitude = low + (high - low) * random.uniform();
      return random.uniform() < 0.5 ? -magnitude : magnitude;
    });

/** Integers in [low, high]: small sets, so ties and equal pairs occur. */
const integers =
  (low: number, high: number): Values =>
  (shape, seed) =>
    generate(shape, seed, (random) => low + Math.floor((high - low + 1) * random.uniform()));

/** Integers plus one half: never within 0.5 of an integer. */
const halfIntegers =
  (low: number, high: number): Values =>
  (shape, seed) =>
    integers(low, high)(shape, seed).map((v) => v + 0.5);

/** `values` with every value within 0.05 of a point moved 0.1 up. */
const avoiding =
  (values: Values, points: number[]): Values =>
  (shape, seed) =>
    values(shape, seed).map((v) =>
      points.some((p) => Math.abs(v - p) < 0.05) ? Math.fround(v + 0.1) : v,
    );

function host(shape: readonly number[], data: Float64Array): NDArray {
  return { shape: [...shape], data };
}

function upload(array: NDArray): Tensor {
  return tensor(Float32Array.from(array.data), array.shape);
}

async function expectForward(
  run: (...inputs: Tensor[]) => Tensor,
  reference: (...inputs: NDArray[]) => NDArray,
  inputs: NDArray[],
  rtol: number,
  atol: number,
  what: string,
): Promise<void> {
  const tensors = inputs.map(upload);
  const out = run(...tensors);
  const expected = reference(...inputs);
  expect(out.shape, `${what}: shape`).toEqual(expected.shape);
  expectClose(await out.toArray(), expected.data, rtol, atol, what);
  out.dispose();
  for (const t of tensors) t.dispose();
}

const fmt = (shape: readonly number[]) => `[${shape.join(',')}]`;

// ---- forward against the CPU reference ----

const BINARY_SHAPES: [number[], number[]][] = [
  [[3, 5, 7], [3, 5, 7]],
  [[3, 1, 5], [4, 1]],
  [[], [2, 3]],
  [[2, 3], []],
  [[7], [5, 7]],
  [[5, 7], [7]],
  [[1], [13]],
];

interface BinaryCase {
  name: string;
  run: (a: Tensor, b: Tensor) => Tensor;
  reference: (a: NDArray, b: NDArray) => NDArray;
  values: [Values, Values];
  rtol: number;
}

// Tolerance |got - ref| <= rtol * max|ref| + 1e-6. Arithmetic, comparisons
// and min/max are exact or correctly rounded in float32, so rtol 1e-5 is
// loose. pow of non-integer exponents goes through the device's pow
// (exp2 and log2), whose WGSL error bound grows with |y log2 x|: rtol 2e-5.
const BINARY_CASES: BinaryCase[] = [
  { name: 'add', run: add, reference: ref.addRef, values: [normal(), normal()], rtol: 1e-5 },
  { name: 'sub', run: sub, reference: ref.subRef, values: [normal(), normal()], rtol: 1e-5 },
  { name: 'mul', run: mul, reference: ref.mulRef, values: [normal(), normal()], rtol: 1e-5 },
  {
    name: 'div',
    run: div,
    reference: ref.divRef,
    values: [normal(), awayFromZero(0.25, 2)],
    rtol: 1e-5,
  },
  {
    name: 'pow',
    run: pow,
    reference: ref.powRef,
    values: [uniform(0.1, 3), normal(1.5)],
    rtol: 2e-5,
  },
  {
    name: 'pow integer exponents',
    run: pow,
    reference: ref.powRef,
    values: [normal(2), integers(-3, 4)],
    rtol: 1e-5,
  },
  {
    name: 'maximum',
    run: maximum,
    reference: ref.maximumRef,
    values: [integers(-2, 2), normal()],
    rtol: 1e-5,
  },
  {
    name: 'minimum',
    run: minimum,
    reference: ref.minimumRef,
    values: [integers(-2, 2), normal()],
    rtol: 1e-5,
  },
  { name: 'eq', run: eq, reference: ref.eqRef, values: [integers(-1, 1), integers(-1, 1)], rtol: 0 },
  { name: 'ne', run: ne, reference: ref.neRef, values: [integers(-1, 1), integers(-1, 1)], rtol: 0 },
  { name: 'lt', run: lt, reference: ref.ltRef, values: [integers(-1, 1), integers(-1, 1)], rtol: 0 },
  { name: 'le', run: le, reference: ref.leRef, values: [integers(-1, 1), integers(-1, 1)], rtol: 0 },
  { name: 'gt', run: gt, reference: ref.gtRef, values: [integers(-1, 1), integers(-1, 1)], rtol: 0 },
  { name: 'ge', run: ge, reference: ref.geRef, values: [integers(-1, 1), integers(-1, 1)], rtol: 0 },
];

describe('binary forward', () => {
  for (const op of BINARY_CASES) {
    it(`${op.name} matches the reference`, async () => {
      for (const [k, [shapeA, shapeB]] of BINARY_SHAPES.entries()) {
        const a = host(shapeA, op.values[0](shapeA, 10 + k));
        const b = host(shapeB, op.values[1](shapeB, 20 + k));
        // Comparisons are exact: atol 0 as well.
        const atol = op.rtol === 0 ? 0 : 1e-6;
        await expectForward(op.run, op.reference, [a, b], op.rtol, atol, `${op.name} ${fmt(shapeA)} ${fmt(shapeB)}`);
      }
    });
  }

  it('where broadcasts condition and both branches', async () => {
    const cases: [number[], number[], number[]][] = [
      [[3, 1, 5], [4, 1], [5]],
      [[2, 3], [], [2, 3]],
      [[7], [5, 7], []],
      [[], [2, 3], [1, 3]],
      [[3, 5, 7], [3, 5, 7], [3, 5, 7]],
    ];
    for (const [k, [shapeC, shapeA, shapeB]] of cases.entries()) {
      const cond = host(shapeC, integers(0, 1)(shapeC, 30 + k));
      const a = host(shapeA, normal()(shapeA, 40 + k));
      const b = host(shapeB, normal()(shapeB, 50 + k));
      // A copy of one input per element: exact.
      await expectForward(where, ref.whereRef, [cond, a, b], 0, 0, `where ${fmt(shapeC)} ${fmt(shapeA)} ${fmt(shapeB)}`);
    }
  });
});

const UNARY_SHAPES: number[][] = [[7], [3, 5, 7], [1], [2, 1, 3, 4], []];

interface UnaryCase {
  name: string;
  run: (x: Tensor) => Tensor;
  reference: (x: NDArray) => NDArray;
  values: Values;
  rtol: number;
}

// Tolerance |got - ref| <= rtol * max|ref| + 1e-6. exp, log, sigmoid, tanh
// and gelu rest on the device's exp and log, which WGSL allows an error of
// a few ulp (exp of the reduced argument |r| <= 0.35: 3 + 2|r| ulp). rtol
// 1e-5 is about 80 ulp of max|ref|, so it holds on any conforming device.
const UNARY_CASES: UnaryCase[] = [
  { name: 'neg', run: neg, reference: ref.negRef, values: normal(3), rtol: 1e-5 },
  { name: 'abs', run: abs, reference: ref.absRef, values: normal(3), rtol: 1e-5 },
  { name: 'exp', run: exp, reference: ref.expRef, values: normal(3), rtol: 1e-5 },
  { name: 'log', run: log, reference: ref.logRef, values: uniform(0.01, 10), rtol: 1e-5 },
  { name: 'sqrt', run: sqrt, reference: ref.sqrtRef, values: uniform(0, 10), rtol: 1e-5 },
  {
    name: 'scale',
    run: (x) => scale(x, -2.5),
    reference: (x) => ref.scaleRef(x, -2.5),
    values: normal(3),
    rtol: 1e-5,
  },
  {
    name: 'clamp',
    run: (x) => clamp(x, -0.5, 0.75),
    reference: (x) => ref.clampRef(x, -0.5, 0.75),
    values: normal(),
    rtol: 1e-5,
  },
  {
    name: 'clamp min only',
    run: (x) => clamp(x, 0.25),
    reference: (x) => ref.clampRef(x, 0.25, null),
    values: normal(),
    rtol: 1e-5,
  },
  {
    name: 'clamp max only',
    run: (x) => clamp(x, null, -0.25),
    reference: (x) => ref.clampRef(x, null, -0.25),
    values: normal(),
    rtol: 1e-5,
  },
  {
    name: 'clamp min above max',
    run: (x) => clamp(x, 1, -1),
    reference: (x) => ref.clampRef(x, 1, -1),
    values: normal(),
    rtol: 1e-5,
  },
  { name: 'relu', run: relu, reference: ref.reluRef, values: normal(3), rtol: 1e-5 },
  {
    name: 'leakyRelu default slope',
    run: (x) => leakyRelu(x),
    reference: (x) => ref.leakyReluRef(x, 0.01),
    values: normal(3),
    rtol: 1e-5,
  },
  {
    name: 'leakyRelu slope 0.2',
    run: (x) => leakyRelu(x, 0.2),
    reference: (x) => ref.leakyReluRef(x, 0.2),
    values: normal(3),
    rtol: 1e-5,
  },
  { name: 'gelu', run: gelu, reference: ref.geluRef, values: normal(4), rtol: 1e-5 },
  { name: 'sigmoid', run: sigmoid, reference: ref.sigmoidRef, values: normal(6), rtol: 1e-5 },
  { name: 'tanh', run: tanh, reference: ref.tanhRef, values: normal(2), rtol: 1e-5 },
];

describe('unary forward', () => {
  for (const op of UNARY_CASES) {
    it(`${op.name} matches the reference`, async () => {
      for (const [k, shape] of UNARY_SHAPES.entries()) {
        const x = host(shape, op.values(shape, 60 + k));
        await expectForward(op.run, op.reference, [x], op.rtol, 1e-6, `${op.name} ${fmt(shape)}`);
      }
    });
  }

  // Largest |got - ref| / |ref| over a dense grid, where |ref| > 1e-30.
  async function maxRelativeError(
    run: (x: Tensor) => Tensor,
    reference: (x: NDArray) => NDArray,
    low: number,
    high: number,
  ): Promise<number> {
    const count = 4001;
    const values = Float64Array.from({ length: count }, (_, i) =>
      Math.fround(low + ((high - low) * i) / (count - 1)),
    );
    const x = host([count], values);
    const input = upload(x);
    const out = run(input);
    const got = await out.toArray();
    const expected = reference(x).data;
    let worst = 0;
    for (let i = 0; i < count; i++) {
      if (Math.abs(expected[i]) > 1e-30) {
        worst = Math.max(worst, Math.abs(got[i] - expected[i]) / Math.abs(expected[i]));
      }
    }
    input.dispose();
    out.dispose();
    return worst;
  }

  // Relative accuracy in the tails, where max|ref|-scaled tolerances see
  // nothing. The bounds are about twice the errors measured on lavapipe:
  // gelu 5.4e-7 (fit 4.4e-7 plus rounding), exp 2.5e-7, sigmoid 3.1e-7.
  it('gelu keeps relative accuracy in its tails', async () => {
    expect(await maxRelativeError(gelu, ref.geluRef, -16, 16)).toBeLessThan(1e-6);
  });

  it('exp and sigmoid keep relative accuracy for large |x|', async () => {
    expect(await maxRelativeError(exp, ref.expRef, -87, 88)).toBeLessThan(6e-7);
    expect(await maxRelativeError(sigmoid, ref.sigmoidRef, -80, 80)).toBeLessThan(6e-7);
  });

  it('tanh is accurate near 0 and in the exp branch', async () => {
    const values = [1e-6, -1e-4, 0.01, 0.2, 0.24999, 0.25, 0.3, -0.7, 1.5, 4, -9, 20];
    const out = tanh(tensor(values, [values.length]));
    const got = await out.toArray();
    values.forEach((v, i) => {
      const expected = Math.tanh(Math.fround(v));
      // Relative, per element: a few float32 ulp.
      expect(Math.abs(got[i] - expected), `tanh(${v})`).toBeLessThanOrEqual(
        5e-7 * Math.abs(expected),
      );
    });
    out.dispose();
  });
});

describe('number operands', () => {
  it('numbers act as tensors of shape []', async () => {
    const x = host([2, 3], normal()([2, 3], 70));
    const scalar = (v: number) => host([], Float64Array.of(v));
    const cases: [string, (t: Tensor) => Tensor, (a: NDArray) => NDArray][] = [
      ['add(x, 2)', (t) => add(t, 2), (a) => ref.addRef(a, scalar(2))],
      ['sub(1, x)', (t) => sub(1, t), (a) => ref.subRef(scalar(1), a)],
      ['mul(3, x)', (t) => mul(3, t), (a) => ref.mulRef(scalar(3), a)],
      ['div(x, 4)', (t) => div(t, 4), (a) => ref.divRef(a, scalar(4))],
      ['pow(x, 3)', (t) => pow(t, 3), (a) => ref.powRef(a, scalar(3))],
      ['pow(2, x)', (t) => pow(2, t), (a) => ref.powRef(scalar(2), a)],
      ['maximum(x, 0)', (t) => maximum(t, 0), (a) => ref.maximumRef(a, scalar(0))],
      ['gt(x, 0.5)', (t) => gt(t, 0.5), (a) => ref.gtRef(a, scalar(0.5))],
    ];
    for (const [what, run, reference] of cases) {
      await expectForward(run, reference, [x], 1e-5, 1e-6, what);
    }
  });

  it('where takes numbers for both branches', async () => {
    const cond = host([5], Float64Array.of(1, 0, 0, 1, 1));
    const x = host([5], normal()([5], 71));
    await expectForward(
      (c, t) => where(c, t, 0),
      (c, a) => ref.whereRef(c, a, host([], Float64Array.of(0))),
      [cond, x],
      0,
      0,
      'where(c, x, 0)',
    );
    const c = upload(cond);
    const out = where(c, 1, -1);
    expect(Array.from(await out.toArray())).toEqual([1, -1, -1, 1, 1]);
    out.dispose();
    c.dispose();
  });

  it('number operands leave no live tensors', async () => {
    const x = tensor([1, 2, 3], [3], { requiresGrad: true });
    const before = liveTensorCount();
    const loss = tidy(() => sum(mul(add(x, 2), 3)));
    loss.backward();
    expect(Array.from(await x.grad!.toArray())).toEqual([3, 3, 3]);
    loss.dispose();
    // x.grad is the only new tensor.
    expect(liveTensorCount()).toBe(before + 1);
    x.dispose();
  });

  it('two numbers are rejected', () => {
    expect(() => add(1 as Operand, 2)).toThrow('add: expected at least one tensor operand, got only numbers (1, 2)');
  });
});

describe('special values', () => {
  async function values(t: Tensor): Promise<number[]> {
    const data = Array.from(await t.toArray());
    t.dispose();
    return data;
  }

  it('log, sqrt and div follow IEEE and PyTorch', async () => {
    expect(await values(log(tensor([0, -1, 1, Infinity], [4])))).toEqual([-Infinity, NaN, 0, Infinity]);
    expect(await values(sqrt(tensor([-1, 0, 4, Infinity], [4])))).toEqual([NaN, 0, 2, Infinity]);
    expect(await values(div(tensor([1, 0, -1], [3]), 0))).toEqual([Infinity, NaN, -Infinity]);
    expect(await values(exp(tensor([-Infinity, 100, NaN], [3])))).toEqual([0, Infinity, NaN]);
  });

  it('sigmoid and tanh saturate without NaN', async () => {
    const big = [-1e4, -1000, -100, -20, 20, 100, 1000, 1e4];
    const s = await values(sigmoid(tensor(big, [big.length])));
    const t = await values(tanh(tensor(big, [big.length])));
    expect(s.slice(0, 2)).toEqual([0, 0]);
    // sigmoid(-100) = 3.7e-44 is subnormal: a device may flush it to 0.
    expect(s[2]).toBeGreaterThanOrEqual(0);
    expect(s[2]).toBeLessThan(1e-43);
    expect(s[3]).toBeCloseTo(ref.sigmoidScalar(-20), 14);
    expect(s.slice(4)).toEqual([1, 1, 1, 1]);
    expect(t).toEqual([-1, -1, -1, -1, 1, 1, 1, 1]);
    const grid = Array.from({ length: 2001 }, (_, i) => -1e4 + 10 * i);
    for (const v of await values(sigmoid(tensor(grid, [grid.length])))) {
      expect(Number.isFinite(v)).toBe(true);
    }
    for (const v of await values(tanh(tensor(grid, [grid.length])))) {
      expect(Number.isFinite(v)).toBe(true);
    }
  });

  it('pow edge cases match C and PyTorch', async () => {
    const base = tensor([-2, -8, 0, 0, -0, 3, 1, NaN, 2, -3], [10]);
    const exponent = tensor([3, 1 / 3, 0, -1, -1, 10, NaN, 0, 0.5, 2], [10]);
    const got = await values(pow(base, exponent));
    expect(got).toEqual([-8, NaN, 1, Infinity, -Infinity, 59049, 1, 1, Math.fround(Math.SQRT2), 9]);
    base.dispose();
    exponent.dispose();
  });

  it('NaN in maximum, clamp and comparisons', async () => {
    const a = tensor([NaN, 1, 2], [3]);
    const b = tensor([1, NaN, 1], [3]);
    expect(await values(maximum(a, b))).toEqual([NaN, NaN, 2]);
    expect(await values(minimum(a, b))).toEqual([NaN, NaN, 1]);
    expect(await values(relu(a))).toEqual([NaN, 1, 2]);
    expect(await values(clamp(a, 0, 1.5))).toEqual([NaN, 1, 1.5]);
    expect(await values(eq(a, a))).toEqual([0, 1, 1]);
    expect(await values(ne(a, a))).toEqual([1, 0, 0]);
    expect(await values(lt(a, b))).toEqual([0, 0, 0]);
    expect(await values(le(a, b))).toEqual([0, 0, 0]);
    expect(await values(gt(a, b))).toEqual([0, 0, 1]);
    expect(await values(ge(a, b))).toEqual([0, 0, 1]);
    a.dispose();
    b.dispose();
  });

  it('gelu saturates like PyTorch', async () => {
    const got = await values(gelu(tensor([-Infinity, -20, 0, 20, Infinity], [5])));
    expect(got).toEqual([NaN, -0, 0, 20, Infinity]);
  });

  it('where treats NaN and -0 conditions as PyTorch does', async () => {
    const cond = tensor([NaN, -0, 0, 2], [4]);
    expect(await values(where(cond, 1, 2))).toEqual([1, 2, 2, 1]);
    cond.dispose();
  });
});

// ---- backward by finite differences ----

interface GradCase {
  name: string;
  run: (...inputs: Tensor[]) => Tensor;
  reference: (...inputs: NDArray[]) => NDArray;
  values: Values[];
  shapes: number[][][];
}

const GRAD_BINARY_SHAPES: number[][][] = [
  [[2, 3], [2, 3]],
  [[3, 1, 5], [4, 1]],
  [[], [2, 3]],
  [[7], [5, 7]],
];

const GRAD_UNARY_SHAPES: number[][][] = [[[7]], [[3, 5, 7]], [[2, 1, 3]]];

// Inputs stay away from kinks and poles by more than the finite-difference
// step: |x| >= 0.2 for abs, relu and leakyRelu, bounds +-0.1 away for
// clamp, positive inputs for log and sqrt, maximum and minimum compare
// half-integers with integers.
const GRAD_CASES: GradCase[] = [
  { name: 'add', run: add, reference: ref.addRef, values: [normal(), normal()], shapes: GRAD_BINARY_SHAPES },
  { name: 'sub', run: sub, reference: ref.subRef, values: [normal(), normal()], shapes: GRAD_BINARY_SHAPES },
  { name: 'mul', run: mul, reference: ref.mulRef, values: [normal(), normal()], shapes: GRAD_BINARY_SHAPES },
  {
    name: 'div',
    run: div,
    reference: ref.divRef,
    values: [normal(), awayFromZero(0.5, 2)],
    shapes: GRAD_BINARY_SHAPES,
  },
  {
    name: 'pow',
    run: pow,
    reference: ref.powRef,
    values: [uniform(0.5, 2), normal()],
    shapes: GRAD_BINARY_SHAPES,
  },
  {
    name: 'maximum',
    run: maximum,
    reference: ref.maximumRef,
    values: [halfIntegers(-3, 2), integers(-3, 3)],
    shapes: GRAD_BINARY_SHAPES,
  },
  {
    name: 'minimum',
    run: minimum,
    reference: ref.minimumRef,
    values: [halfIntegers(-3, 2), integers(-3, 3)],
    shapes: GRAD_BINARY_SHAPES,
  },
  { name: 'neg', run: neg, reference: ref.negRef, values: [normal()], shapes: GRAD_UNARY_SHAPES },
  { name: 'abs', run: abs, reference: ref.absRef, values: [awayFromZero(0.2, 2)], shapes: GRAD_UNARY_SHAPES },
  { name: 'exp', run: exp, reference: ref.expRef, values: [normal()], shapes: GRAD_UNARY_SHAPES },
  { name: 'log', run: log, reference: ref.logRef, values: [uniform(0.2, 5)], shapes: GRAD_UNARY_SHAPES },
  { name: 'sqrt', run: sqrt, reference: ref.sqrtRef, values: [uniform(0.2, 5)], shapes: GRAD_UNARY_SHAPES },
  {
    name: 'scale',
    run: (x) => scale(x, 1.5),
    reference: (x) => ref.scaleRef(x, 1.5),
    values: [normal()],
    shapes: GRAD_UNARY_SHAPES,
  },
  {
    name: 'clamp',
    run: (x) => clamp(x, -0.5, 0.5),
    reference: (x) => ref.clampRef(x, -0.5, 0.5),
    values: [avoiding(normal(), [-0.5, 0.5])],
    shapes: GRAD_UNARY_SHAPES,
  },
  { name: 'relu', run: relu, reference: ref.reluRef, values: [awayFromZero(0.2, 2)], shapes: GRAD_UNARY_SHAPES },
  {
    name: 'leakyRelu',
    run: (x) => leakyRelu(x, 0.1),
    reference: (x) => ref.leakyReluRef(x, 0.1),
    values: [awayFromZero(0.2, 2)],
    shapes: GRAD_UNARY_SHAPES,
  },
  { name: 'gelu', run: gelu, reference: ref.geluRef, values: [normal(2)], shapes: GRAD_UNARY_SHAPES },
  { name: 'sigmoid', run: sigmoid, reference: ref.sigmoidRef, values: [normal(2)], shapes: GRAD_UNARY_SHAPES },
  { name: 'tanh', run: tanh, reference: ref.tanhRef, values: [normal()], shapes: GRAD_UNARY_SHAPES },
  {
    name: 'pow tensor ** number',
    run: (x) => pow(x, 3),
    reference: (x) => ref.powRef(x, host([], Float64Array.of(3))),
    values: [normal()],
    shapes: GRAD_UNARY_SHAPES,
  },
  {
    name: 'pow tensor ** 0.5',
    run: (x) => pow(x, 0.5),
    reference: (x) => ref.powRef(x, host([], Float64Array.of(0.5))),
    values: [uniform(0.2, 4)],
    shapes: GRAD_UNARY_SHAPES,
  },
  {
    name: 'sub number - tensor',
    run: (x) => sub(1, x),
    reference: (x) => ref.subRef(host([], Float64Array.of(1)), x),
    values: [normal()],
    shapes: GRAD_UNARY_SHAPES,
  },
  {
    name: 'div number / tensor',
    run: (x) => div(2, x),
    reference: (x) => ref.divRef(host([], Float64Array.of(2)), x),
    values: [awayFromZero(0.5, 2)],
    shapes: GRAD_UNARY_SHAPES,
  },
];

describe('backward', () => {
  for (const op of GRAD_CASES) {
    it(`${op.name} gradient matches finite differences`, async () => {
      for (const [k, shapes] of op.shapes.entries()) {
        const inputs = shapes.map((shape, i) => ({
          shape,
          data: op.values[i](shape, 100 * (k + 1) + i),
        }));
        // gradCheck's default tolerance: rtol 1e-3 * max|fd| + atol 1e-4,
        // for float32 autograd against float64 central differences.
        const result = await gradCheck(op.run, op.reference, inputs);
        expect(result.ok, `${op.name} ${shapes.map(fmt).join(' ')}\n${result.report}`).toBe(true);
      }
    });
  }

  it('where gradient flows to both branches', async () => {
    const cases: number[][][] = [
      [[3, 1, 5], [4, 1], [5]],
      [[2, 3], [], [2, 3]],
      [[7], [5, 7], [7]],
    ];
    for (const [k, [shapeC, shapeA, shapeB]] of cases.entries()) {
      const inputs = [
        { shape: shapeC, data: integers(0, 1)(shapeC, 300 + k), requiresGrad: false },
        { shape: shapeA, data: normal()(shapeA, 310 + k) },
        { shape: shapeB, data: normal()(shapeB, 320 + k) },
      ];
      const result = await gradCheck(where, ref.whereRef, inputs);
      expect(result.ok, `where ${[shapeC, shapeA, shapeB].map(fmt).join(' ')}\n${result.report}`).toBe(true);
    }
  });
});

describe('subgradients', () => {
  async function gradOf(
    run: (x: Tensor) => Tensor,
    values: number[],
  ): Promise<number[]> {
    const x = tensor(values, [values.length], { requiresGrad: true });
    const loss = sum(run(x));
    loss.backward();
    const grad = Array.from(await x.grad!.toArray());
    loss.dispose();
    x.dispose();
    return grad;
  }

  // Expected values are PyTorch 1.13's gradients at the kinks.
  it('relu, abs and leakyRelu at 0', async () => {
    expect(await gradOf(relu, [-1, 0, 1])).toEqual([0, 0, 1]);
    expect(await gradOf(abs, [-1, 0, 1])).toEqual([-1, 0, 1]);
    const slope = Math.fround(0.1);
    expect(await gradOf((x) => leakyRelu(x, 0.1), [-1, 0, 1])).toEqual([slope, slope, 1]);
  });

  it('clamp passes the gradient at its bounds', async () => {
    expect(await gradOf((x) => clamp(x, 0, 1), [-1, 0, 0.5, 1, 2])).toEqual([0, 1, 1, 1, 0]);
    expect(await gradOf((x) => clamp(x, 1, 0), [-1, 0, 1])).toEqual([0, 0, 0]);
  });

  it('maximum and minimum split ties evenly', async () => {
    for (const [op, expectedA, expectedB] of [
      [maximum, [0.5, 1, 0], [0.5, 0, 1]],
      [minimum, [0.5, 0, 1], [0.5, 1, 0]],
    ] as const) {
      const a = tensor([1, 2, 3], [3], { requiresGrad: true });
      const b = tensor([1, 1, 4], [3], { requiresGrad: true });
      const loss = sum(op(a, b));
      loss.backward();
      expect(Array.from(await a.grad!.toArray())).toEqual(expectedA);
      expect(Array.from(await b.grad!.toArray())).toEqual(expectedB);
      for (const t of [a, b, loss]) t.dispose();
    }
  });

  it('pow gradients at exponent 0 and base 0', async () => {
    expect(await gradOf((x) => pow(x, 0), [-1, 0, 2])).toEqual([0, 0, 0]);
    expect(await gradOf((x) => pow(x, 2), [-1, 0, 2])).toEqual([-2, 0, 4]);
    expect(await gradOf((x) => pow(x, 0.5), [0])).toEqual([Infinity]);
    // d(b ** e)/de is 0 where b = 0 and e >= 0; log(2) * 2^e elsewhere.
    const base = tensor([0, 0, 2], [3]);
    const e = tensor([0, 2, 1], [3], { requiresGrad: true });
    const loss = sum(pow(base, e));
    loss.backward();
    const grad = await e.grad!.toArray();
    expect(grad[0]).toBe(0);
    expect(grad[1]).toBe(0);
    expect(grad[2]).toBeCloseTo(2 * Math.LN2, 6);
    for (const t of [base, e, loss]) t.dispose();
  });

  it('log and sqrt have infinite slope at 0', async () => {
    expect(await gradOf(log, [0, 2])).toEqual([Infinity, 0.5]);
    expect(await gradOf(sqrt, [0, 4])).toEqual([Infinity, 0.25]);
  });
});

// ---- bad input ----

describe('bad input', () => {
  const binary: [string, (a: Tensor, b: Tensor) => Tensor][] = [
    ['add', add],
    ['sub', sub],
    ['mul', mul],
    ['div', div],
    ['pow', pow],
    ['maximum', maximum],
    ['minimum', minimum],
    ['eq', eq],
    ['ne', ne],
    ['lt', lt],
    ['le', le],
    ['gt', gt],
    ['ge', ge],
  ];

  it('mismatched shapes name the op and both shapes', () => {
    const a = zeros([2, 3]);
    const b = zeros([4]);
    const before = liveTensorCount();
    for (const [name, op] of binary) {
      expect(() => op(a, b)).toThrow(`${name}: shapes [2,3] and [4] cannot be broadcast together`);
    }
    expect(() => where(a, b, 0)).toThrow('where: shapes [2,3] and [4] cannot be broadcast together');
    expect(() => where(b, a, a)).toThrow('where: shapes [4] and [2,3] cannot be broadcast together');
    expect(liveTensorCount()).toBe(before);
    a.dispose();
    b.dispose();
  });

  it('clamp without bounds is rejected', () => {
    const x = zeros([3]);
    expect(() => clamp(x)).toThrow('clamp: expected a min or a max bound, got neither');
    x.dispose();
  });

  it('use after dispose names the op', () => {
    const x = zeros([3]);
    const y = zeros([3]);
    x.dispose();
    expect(() => log(x)).toThrow(/^log: tensor #\d+ of shape \[3\] was already disposed/);
    expect(() => mul(y, x)).toThrow(/^mul: tensor #\d+ of shape \[3\] was already disposed/);
    expect(() => where(y, x, 1)).toThrow(/^where: tensor #\d+ of shape \[3\] was already disposed/);
    expect(() => gelu(x)).toThrow(/^gelu: tensor #\d+ of shape \[3\] was already disposed/);
    y.dispose();
  });
});

// ---- NaN and Inf check mode ----

describe('non-finite check mode', () => {
  it('names log as the op that made NaN', async () => {
    setDebugChecks({ nonFinite: true });
    const x = tensor([-1, 1, 2], [3]);
    const y = log(x);
    // exp of the NaN is NaN too, but log came first.
    const z = exp(y);
    const failure = await z.toArray().then(
      () => null,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(NonFiniteError);
    expect((failure as Error).message).toBe(
      'log: output of shape [3] contains NaN or Inf (inputs [3])',
    );
    // The error is reported once.
    await sync();
    for (const t of [x, y, z]) t.dispose();
  });

  it('names a binary op with both input shapes', async () => {
    setDebugChecks({ nonFinite: true });
    const x = tensor([1, 0, 2, 3, 4, 5], [2, 3]);
    const ok = add(x, 1);
    const bad = div(ok, x);
    await expect(sync()).rejects.toThrow(
      'div: output of shape [2,3] contains NaN or Inf (inputs [2,3], [2,3])',
    );
    const scalar = div(x, 0);
    await expect(scalar.toArray()).rejects.toThrow(
      'div: output of shape [2,3] contains NaN or Inf (inputs [2,3], [])',
    );
    for (const t of [x, ok, bad, scalar]) t.dispose();
  });

  it('passes finite outputs and is off by default', async () => {
    setDebugChecks({ nonFinite: true });
    const x = tensor([1, 2, 3], [3]);
    const y = sigmoid(mul(log(x), 2));
    expect((await y.toArray()).every(Number.isFinite)).toBe(true);
    setDebugChecks({ nonFinite: false });
    const z = log(neg(x));
    expect(Array.from(await z.toArray()).every(Number.isNaN)).toBe(true);
    for (const t of [x, y, z]) t.dispose();
  });

  it('catches NaN made in a backward rule', async () => {
    setDebugChecks({ nonFinite: true });
    const x = tensor([0, 4], [2], { requiresGrad: true });
    const y = sqrt(x);
    await sync();
    sum(y).backward();
    await expect(sync()).rejects.toThrow(/^sqrt backward: output of shape \[2\] contains NaN or Inf/);
    x.dispose();
    y.dispose();
  });
});

// ---- tensor methods ----

describe('tensor methods', () => {
  it('methods call the op functions', async () => {
    const x = tensor([1, -2, 3, -4, 5, -6], [2, 3]);
    const y = tensor([0.5, 1, 2], [3]);
    const cases: [string, Tensor, number[]][] = [
      ['add', x.add(y), [1.5, -1, 5, -3.5, 6, -4]],
      ['sub', x.sub(1), [0, -3, 2, -5, 4, -7]],
      ['mul', x.mul(y), [0.5, -2, 6, -2, 5, -12]],
      ['div', x.div(2), [0.5, -1, 1.5, -2, 2.5, -3]],
      ['pow', x.pow(2), [1, 4, 9, 16, 25, 36]],
      ['maximum', x.maximum(0), [1, 0, 3, 0, 5, 0]],
      ['minimum', x.minimum(0), [0, -2, 0, -4, 0, -6]],
      ['gt', x.gt(0), [1, 0, 1, 0, 1, 0]],
      ['where', x.where(x.lt(0), 0), [0, -2, 0, -4, 0, -6]],
      ['neg', x.neg(), [-1, 2, -3, 4, -5, 6]],
      ['abs', x.abs(), [1, 2, 3, 4, 5, 6]],
      ['relu', x.relu(), [1, 0, 3, 0, 5, 0]],
      ['clamp', x.clamp(-3, 3), [1, -2, 3, -3, 3, -3]],
      ['scale', x.scale(-1), [-1, 2, -3, 4, -5, 6]],
      ['sum', x.sum(1), [2, -5]],
      ['mean', x.mean(), [-0.5]],
      ['reshape', x.reshape([3, 2]), [1, -2, 3, -4, 5, -6]],
    ];
    for (const [name, out, expected] of cases) {
      expect(Array.from(await out.toArray()), name).toEqual(expected);
      out.dispose();
    }
    expect(x.reshape([3, -1]).shape).toEqual([3, 2]);
    const chained = x.abs().log().exp().sqrt().sigmoid().tanh().gelu().leakyRelu();
    expect(chained.shape).toEqual([2, 3]);
    x.dispose();
    y.dispose();
  });

  it('methods are not enumerable', () => {
    const x = zeros([1]);
    expect(Object.keys(x)).not.toContain('add');
    expect(Object.keys(Tensor.prototype)).not.toContain('add');
    x.dispose();
  });
});
