import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  argmax,
  argmin,
  backward,
  gradCheck,
  max,
  mean,
  min,
  sum,
  tensor,
  type Tensor,
} from '../src/index.js';
import { reduceOptions } from '../src/kernels/reduce.js';
import { runOptions } from '../src/kernels/runs.js';
import {
  argReduceRef,
  reduceRef,
  type ReduceRefKind,
} from '../src/reference/reduce.js';
import type { NDArray } from '../src/reference/ndarray.js';
import { Random } from '../src/random.js';
import { device, expectClose, hostAndDevice } from './helpers.js';

beforeAll(device);

const defaults = { ...reduceOptions };
afterEach(() => {
  Object.assign(reduceOptions, defaults);
  runOptions.elementsPerInvocation = 'auto';
});

type DeviceReduce = (
  x: Tensor,
  axes?: number | readonly number[],
  options?: { keepDims?: boolean },
) => Tensor;

const OPS: Record<ReduceRefKind, DeviceReduce> = { sum, mean, max, min };

type Axes = number | number[] | undefined;

function positiveAxes(axes: Axes, rank: number): number[] {
  if (axes === undefined) return [...Array(rank).keys()];
  const list = typeof axes === 'number' ? [axes] : axes;
  return list.map((a) => (a < 0 ? a + rank : a)).sort((a, b) => a - b);
}

async function checkReduction(
  kind: ReduceRefKind,
  shape: number[],
  axes: Axes,
  keepDims: boolean,
  seed: number,
  rtol = 1e-5,
): Promise<void> {
  const [host, x] = hostAndDevice(shape, seed);
  const out = OPS[kind](x, axes, { keepDims });
  const ref = reduceRef(host, positiveAxes(axes, shape.length), keepDims, kind);
  const over = JSON.stringify(axes);
  const what = `${kind} of [${shape}] over ${over} keepDims ${keepDims}`;
  expect(out.shape, `${what}: shape`).toEqual(ref.shape);
  expectClose(await out.toArray(), ref.data, rtol, 1e-6, what);
  x.dispose();
  out.dispose();
}

const CASES: { shape: number[]; axes: Axes }[] = [
  { shape: [3, 5, 7], axes: undefined },
  { shape: [3, 5, 7], axes: 0 },
  { shape: [3, 5, 7], axes: 1 },
  { shape: [3, 5, 7], axes: -1 },
  { shape: [3, 5, 7], axes: [0, 2] },
  { shape: [3, 5, 7], axes: [-3, -2] },
  { shape: [3, 5, 7], axes: [] },
  { shape: [2, 3, 4, 5, 6], axes: [1, 3] },
  { shape: [2, 3, 4, 5, 6], axes: [0, 2, 4] },
  { shape: [2, 3, 4, 5, 6], axes: [-1, 0] },
  { shape: [3, 1, 5], axes: 1 },
  { shape: [1, 1, 7], axes: [0, 1] },
  { shape: [7], axes: 0 },
  { shape: [], axes: undefined },
];

// Shapes past reduceOptions.singlePassLimit, so each plan runs several passes.
const LARGE_CASES: { shape: number[]; axes: number | number[] }[] = [
  { shape: [3, 1000], axes: 1 }, // rows, three passes
  { shape: [1000, 3], axes: 0 }, // columns
  { shape: [2, 3, 300], axes: [0, 2] }, // rows, then columns
  { shape: [20, 3, 20, 3], axes: [0, 2] }, // two reduced axes in one pass
  { shape: [5, 4099], axes: [0, 1] }, // one row of 20495 elements
];

describe('reductions forward', () => {
  for (const kind of ['sum', 'mean', 'max', 'min'] as const) {
    it(`${kind} small shapes against the reference`, async () => {
      let seed = 10;
      for (const { shape, axes } of CASES) {
        for (const keepDims of [false, true]) {
          await checkReduction(kind, shape, axes, keepDims, seed++);
        }
      }
    });

    it(`${kind} multi-pass shapes against the reference`, async () => {
      let seed = 100;
      for (const { shape, axes } of LARGE_CASES) {
        await checkReduction(kind, shape, axes, false, seed++);
      }
    });
  }

  for (const rowLayout of ['blocked', 'interleaved'] as const) {
    it(`row layout ${rowLayout} matches the reference`, async () => {
      reduceOptions.rowLayout = rowLayout;
      for (const kind of ['sum', 'max'] as const) {
        await checkReduction(kind, [3, 1000], 1, false, 7);
        await checkReduction(kind, [5, 4099], undefined, true, 8);
        await checkReduction(kind, [4, 37], -1, false, 9);
      }
    });
  }

  for (const elements of [1, 16]) {
    it(`${elements} element(s) per invocation`, async () => {
      runOptions.elementsPerInvocation = elements;
      await checkReduction('sum', [4, 3, 37], [0, 2], false, 24);
      await checkReduction('mean', [37, 3], 1, true, 25);
      await checkReduction('max', [5, 4099], undefined, false, 26);
      await checkReduction('min', [2, 3, 1], 1, false, 27);
      const [host, x] = hostAndDevice([3, 5, 7], 28);
      const ref = argReduceRef(host, 1, false, 'argmax');
      const got = Array.from(await argmax(x, 1).toArray());
      expect(got).toEqual(Array.from(ref.data));
      x.dispose();
    });
  }

  it('small chunk size forces many passes', async () => {
    reduceOptions.chunkSize = 3;
    reduceOptions.singlePassLimit = 4;
    await checkReduction('sum', [2, 3, 50], [0, 2], false, 21);
    await checkReduction('min', [3, 5, 7], undefined, false, 22);
    await checkReduction('max', [30, 2, 9, 2], [0, 2], true, 23);
  });

  it('sum of 2^20 + 7 elements against float64', async () => {
    const size = 2 ** 20 + 7;
    const random = new Random(5);
    const data = Float32Array.from(
      { length: size },
      () => random.normal() + 0.25,
    );
    let total = 0;
    for (const v of data) total += v;
    const x = tensor(data, [size]);
    const got = await sum(x).item();
    // Over 1e5 elements the tolerance is 1e-4 relative.
    expectClose([got], [total], 1e-4, 1e-6, 'sum of 2^20 + 7');
    // The pieces keep the error far lower: about 2e-8 relative here, where
    // one sequential float32 loop is off by 8e-6 relative (2.1 of 261043).
    expectClose([got], [total], 1e-6, 0, 'sum of 2^20 + 7, tight');
    const average = await mean(x).item();
    expectClose([average], [total / size], 1e-4, 1e-6, 'mean of 2^20 + 7');
    x.dispose();
  });

  it('same input twice gives bitwise equal results', async () => {
    const size = 2 ** 18 + 3;
    const random = new Random(6);
    const data = Float32Array.from({ length: size }, () => random.normal());
    const x = tensor(data, [size]);
    const grid = tensor(data.subarray(0, 7 * 37449), [7, 37449]);
    for (const run of [() => sum(x), () => mean(grid, 0), () => max(grid, 1)]) {
      const first = await run().toArray();
      const second = await run().toArray();
      expect(second).toEqual(first);
    }
    x.dispose();
    grid.dispose();
  });

  it('empty reductions follow PyTorch', async () => {
    const x = tensor([], [3, 0]);
    expect(Array.from(await sum(x, 1).toArray())).toEqual([0, 0, 0]);
    const averages = await mean(x, 1).toArray();
    expect(Array.from(averages).every(Number.isNaN)).toBe(true);
    expect(sum(x, 0).shape).toEqual([0]);
    expect(() => max(x, 1)).toThrow(
      'max: cannot take the max over an empty axis of shape [3,0] (axes [1])',
    );
    x.dispose();
  });

  it('max and min keep infinities', async () => {
    const x = tensor([-Infinity, -Infinity, Infinity, 2], [2, 2]);
    const maxima = Array.from(await max(x, 1).toArray());
    expect(maxima).toEqual([-Infinity, Infinity]);
    expect(Array.from(await min(x, 1).toArray())).toEqual([-Infinity, 2]);
    x.dispose();
  });
});

describe('reductions backward', () => {
  const GRAD_CASES: { shape: number[]; axes: Axes; keepDims: boolean }[] = [
    { shape: [3, 5, 7], axes: undefined, keepDims: false },
    { shape: [3, 5, 7], axes: 1, keepDims: true },
    { shape: [2, 3, 4, 5], axes: [1, 3], keepDims: false },
    { shape: [4, 3, 5], axes: [-1, 0], keepDims: true },
  ];

  for (const kind of ['sum', 'mean', 'max', 'min'] as const) {
    it(`${kind} gradient matches finite differences`, async () => {
      for (const { shape, axes, keepDims } of GRAD_CASES) {
        const list = positiveAxes(axes, shape.length);
        const result = await gradCheck(
          (x) => OPS[kind](x, axes, { keepDims }),
          (x: NDArray) => reduceRef(x, list, keepDims, kind),
          [{ shape, seed: 31 }],
        );
        expect(result.ok, result.report).toBe(true);
      }
    });
  }

  it('max splits the gradient between ties like torch.amax', async () => {
    // PyTorch 1.13: torch.amax(x, 1).sum().backward() on this x gives
    // [[0, 0.5, 0.5], [0.5, 0.5, 0]]; amin gives [[1, 0, 0], [0, 0, 1]].
    const values = [1, 3, 3, 2, 2, 0];
    const x = tensor(values, [2, 3], { requiresGrad: true });
    backward(sum(max(x, 1)));
    const maxGrad = Array.from(await x.grad!.toArray());
    expect(maxGrad).toEqual([0, 0.5, 0.5, 0.5, 0.5, 0]);

    const y = tensor(values, [2, 3], { requiresGrad: true });
    backward(sum(min(y, 1)));
    expect(Array.from(await y.grad!.toArray())).toEqual([1, 0, 0, 0, 0, 1]);

    const z = tensor(values, [2, 3], { requiresGrad: true });
    backward(max(z));
    expect(Array.from(await z.grad!.toArray())).toEqual([0, 0.5, 0.5, 0, 0, 0]);
    for (const t of [x, y, z]) t.dispose();
  });
});

describe('argmax and argmin', () => {
  it('match the reference along each axis', async () => {
    const shape = [3, 5, 7];
    const [host, x] = hostAndDevice(shape, 41);
    for (const kind of ['argmax', 'argmin'] as const) {
      const op = kind === 'argmax' ? argmax : argmin;
      for (const axis of [0, 1, 2, -1]) {
        for (const keepDims of [false, true]) {
          const out = op(x, axis, { keepDims });
          const ref = argReduceRef(host, (axis + 3) % 3, keepDims, kind);
          expect(out.shape).toEqual(ref.shape);
          expect(Array.from(await out.toArray())).toEqual(Array.from(ref.data));
          out.dispose();
        }
      }
    }
    x.dispose();
  });

  it('ties take the first index across passes', async () => {
    // 1000 elements per row run in several passes; the ties sit in
    // different pieces of the row.
    const data = new Float32Array(2 * 1000);
    data[10] = 5;
    data[700] = 5;
    data[1000 + 999] = -3;
    data[1000 + 3] = -3;
    const x = tensor(data, [2, 1000]);
    expect(Array.from(await argmax(x, 1).toArray())).toEqual([10, 0]);
    expect(Array.from(await argmin(x, 1).toArray())).toEqual([0, 3]);
    const columns = tensor(data, [1000, 2]);
    const host = { shape: [1000, 2], data: Float64Array.from(data) };
    const ref = argReduceRef(host, 0, false, 'argmax');
    const got = Array.from(await argmax(columns, 0).toArray());
    expect(got).toEqual(Array.from(ref.data));
    x.dispose();
    columns.dispose();
  });

  it('argmax rejects an axis list', () => {
    const x = tensor([1, 2], [2]);
    expect(() => argmax(x, [0] as unknown as number)).toThrow(
      'argmax: axis must be one number, got 0. For the argmax over several',
    );
    x.dispose();
  });
});

describe('reduction methods', () => {
  it('tensor methods call the ops', async () => {
    const x = tensor([1, 5, 3, 4, 2, 6], [2, 3]);
    expect(Array.from(await x.max(1).toArray())).toEqual([5, 6]);
    expect(Array.from(await x.min(0).toArray())).toEqual([1, 2, 3]);
    expect(Array.from(await x.argmax(1).toArray())).toEqual([1, 2]);
    expect(Array.from(await x.argmin(0, { keepDims: true }).toArray())).toEqual(
      [0, 1, 0],
    );
    x.dispose();
  });
});

describe('reduction errors', () => {
  it('bad axis names the op, axis and shape', () => {
    const x = tensor(new Float32Array(105), [3, 5, 7]);
    expect(() => sum(x, 3)).toThrow(
      'sum: axis 3 is out of range for shape [3,5,7] (valid axes: -3 to 2)',
    );
    expect(() => max(x, [-4])).toThrow(
      'max: axis -4 is out of range for shape [3,5,7]',
    );
    expect(() => mean(x, [1, -2])).toThrow(
      'mean: axes [1,-2] of shape [3,5,7] name axis 1 more than once',
    );
    expect(() => argmin(x, 1.5)).toThrow('argmin: axis 1.5 is out of range');
    x.dispose();
  });
});
