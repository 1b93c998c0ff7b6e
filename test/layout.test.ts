import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  broadcastTo,
  concat,
  gradCheck,
  indexSelect,
  narrow,
  pad,
  permute,
  slice,
  squeeze,
  tensor,
  transpose,
  unsqueeze,
  type Tensor,
} from '../src/index.js';
import {
  broadcastToRef,
  concatRef,
  indexSelectRef,
  padRef,
  permuteRef,
  sliceRef,
} from '../src/reference/layout.js';
import { runOptions } from '../src/kernels/runs.js';
import type { NDArray } from '../src/reference/ndarray.js';
import { device, hostAndDevice } from './helpers.js';

beforeAll(device);

/** Copies move float32 values unchanged, so results must match exactly. */
async function expectExact(
  got: Tensor,
  ref: NDArray,
  what: string,
): Promise<void> {
  expect(got.shape, `${what}: shape`).toEqual(ref.shape);
  expect(Array.from(await got.toArray()), `${what}: values`).toEqual(
    Array.from(ref.data),
  );
  got.dispose();
}

function permutations(items: number[]): number[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [
      item,
      ...rest,
    ]),
  );
}

describe('permute and transpose', () => {
  it('permute every order of [3,5,7]', async () => {
    const [host, x] = hostAndDevice([3, 5, 7], 1);
    for (const dims of permutations([0, 1, 2])) {
      await expectExact(
        permute(x, dims),
        permuteRef(host, dims),
        `permute ${dims}`,
      );
    }
    x.dispose();
  });

  it('permute rank 5, negative dims and size-1 axes', async () => {
    const [host, x] = hostAndDevice([2, 3, 4, 5, 6], 2);
    for (const dims of [
      [4, 0, 3, 1, 2],
      [0, 1, 2, 4, 3],
      [1, 0, 2, 3, 4],
    ]) {
      await expectExact(
        permute(x, dims),
        permuteRef(host, dims),
        `permute ${dims}`,
      );
    }
    await expectExact(
      permute(x, [-1, 0, 1, 2, 3]),
      permuteRef(host, [4, 0, 1, 2, 3]),
      'negative',
    );
    const [small, y] = hostAndDevice([3, 1, 5], 3);
    await expectExact(
      permute(y, [2, 0, 1]),
      permuteRef(small, [2, 0, 1]),
      'size-1 axis',
    );
    x.dispose();
    y.dispose();
  });

  it('transpose swaps two axes', async () => {
    const [host, x] = hostAndDevice([3, 5, 7], 4);
    await expectExact(
      transpose(x, 0, 2),
      permuteRef(host, [2, 1, 0]),
      'transpose 0 2',
    );
    await expectExact(
      transpose(x, -1, -2),
      permuteRef(host, [0, 2, 1]),
      'transpose -1 -2',
    );
    x.dispose();
  });
});

describe('slice, narrow and pad', () => {
  it('slice boxes against the reference', async () => {
    const [host, x] = hostAndDevice([3, 5, 7], 5);
    const cases: [number[], number[], number[], number[]][] = [
      // starts, ends, resolved starts, resolved ends
      [[1, 0, 2], [3, 5, 6], [1, 0, 2], [3, 5, 6]],
      [[1], [2], [1, 0, 0], [2, 5, 7]],
      [[0, -2], [3, -1], [0, 3, 0], [3, 4, 7]],
      [[0, 1, 1], [3, 1, 7], [0, 1, 1], [3, 1, 7]],
    ];
    for (const [starts, ends, from, to] of cases) {
      await expectExact(
        slice(x, starts, ends),
        sliceRef(host, from, to),
        `slice ${starts} ${ends}`,
      );
    }
    const [big, y] = hostAndDevice([2, 3, 4, 5, 6], 6);
    await expectExact(
      slice(y, [1, 0, 1, 2, 0], [2, 3, 3, 5, 6]),
      sliceRef(big, [1, 0, 1, 2, 0], [2, 3, 3, 5, 6]),
      'slice rank 5',
    );
    x.dispose();
    y.dispose();
  });

  it('narrow takes a run along one axis', async () => {
    const [host, x] = hostAndDevice([3, 5, 7], 7);
    await expectExact(
      narrow(x, 1, 1, 3),
      sliceRef(host, [0, 1, 0], [3, 4, 7]),
      'narrow',
    );
    await expectExact(
      narrow(x, -1, -3, 2),
      sliceRef(host, [0, 0, 4], [3, 5, 6]),
      'negative',
    );
    x.dispose();
  });

  it('pad adds and crops against the reference', async () => {
    const [host, x] = hostAndDevice([3, 5, 7], 8);
    const cases: [number[][], number][] = [
      [[[1, 2], [0, 0], [3, 1]], 0],
      [[[0, 0], [2, 2], [0, 0]], 0.5],
      [[[-1, 0], [2, -2], [0, -7]], 0],
      [[[-1, 2], [-1, -1], [1, -3]], -4],
    ];
    for (const [pads, value] of cases) {
      await expectExact(
        pad(x, pads, value),
        padRef(host, pads, value),
        `pad ${JSON.stringify(pads)}`,
      );
    }
    x.dispose();
  });
});

describe('concat, indexSelect and broadcastTo', () => {
  it('concat along each axis', async () => {
    const [a, ta] = hostAndDevice([3, 2, 7], 9);
    const [b, tb] = hostAndDevice([3, 5, 7], 10);
    const [c, tc] = hostAndDevice([3, 1, 7], 11);
    const [e, te] = hostAndDevice([3, 0, 7], 12);
    await expectExact(
      concat([ta, tb, tc], 1),
      concatRef([a, b, c], 1),
      'axis 1',
    );
    await expectExact(
      concat([ta, te, tc], -2),
      concatRef([a, e, c], 1),
      'empty part',
    );
    await expectExact(concat([tb], 1), concatRef([b], 1), 'one tensor');
    const [d, td] = hostAndDevice([2, 5, 7], 13);
    await expectExact(concat([tb, td], 0), concatRef([b, d], 0), 'axis 0');
    const [f, tf] = hostAndDevice([3, 5, 2], 14);
    await expectExact(concat([tb, tf], -1), concatRef([b, f], 2), 'last axis');
    for (const t of [ta, tb, tc, td, te, tf]) t.dispose();
  });

  it('indexSelect with arrays and tensors', async () => {
    const [host, x] = hostAndDevice([3, 5, 7], 15);
    const cases: [number, number[]][] = [
      [1, [4, 0, 0, 2]],
      [0, [2, 1]],
      [2, [6, 5, 4, 3, 2, 1, 0, 3]],
      [1, []],
    ];
    for (const [axis, indices] of cases) {
      const ref = indexSelectRef(host, axis, indices);
      await expectExact(
        indexSelect(x, axis, indices),
        ref,
        `array ${axis} ${indices}`,
      );
      const onDevice = tensor(indices, [indices.length]);
      await expectExact(
        indexSelect(x, axis, onDevice),
        ref,
        `tensor ${axis} ${indices}`,
      );
      onDevice.dispose();
    }
    await expectExact(
      indexSelect(x, -1, Int32Array.from([1, 1])),
      indexSelectRef(host, 2, [1, 1]),
      'negative axis',
    );
    x.dispose();
  });

  it('indexSelect gives NaN for a bad device index', async () => {
    const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    const indices = tensor([2, 3, -1, 0.5], [4]);
    const got = Array.from(await indexSelect(x, 1, indices).toArray());
    expect(got[0]).toBe(3);
    expect(got[4]).toBe(6);
    expect(got.filter(Number.isNaN).length).toBe(6);
    x.dispose();
    indices.dispose();
  });

  it('broadcastTo repeats size-1 and leading axes', async () => {
    const cases: [number[], number[]][] = [
      [[5, 1], [3, 5, 7]],
      [[1], [4]],
      [[3, 1, 7], [2, 3, 5, 7]],
      [[3, 5], [3, 5]],
    ];
    let seed = 16;
    for (const [from, to] of cases) {
      const [host, x] = hostAndDevice(from, seed++);
      await expectExact(
        broadcastTo(x, to),
        broadcastToRef(host, to),
        `broadcast ${from} to ${to}`,
      );
      x.dispose();
    }
  });

  it('squeeze and unsqueeze are views', async () => {
    const x = tensor([1, 2, 3], [1, 3, 1]);
    expect(squeeze(x).shape).toEqual([3]);
    expect(squeeze(x, -1).shape).toEqual([1, 3]);
    expect(unsqueeze(x, 0).shape).toEqual([1, 1, 3, 1]);
    expect(unsqueeze(x, -1).shape).toEqual([1, 3, 1, 1]);
    expect(Array.from(await unsqueeze(x, 2).toArray())).toEqual([1, 2, 3]);
    expect(() => squeeze(x, 1)).toThrow(
      'squeeze: axis 1 of shape [1,3,1] is not an axis of size 1',
    );
    expect(() => unsqueeze(x, 4)).toThrow(
      'unsqueeze: axis 4 is out of range for shape [1,3,1]',
    );
    x.dispose();
  });
});

describe('run lengths', () => {
  afterEach(() => {
    runOptions.elementsPerInvocation = 'auto';
  });

  for (const run of [1, 3, 64]) {
    it(`copies with runs of ${run} element(s)`, async () => {
      runOptions.elementsPerInvocation = run;
      const [host, x] = hostAndDevice([3, 5, 7], 50);
      await expectExact(
        permute(x, [2, 0, 1]),
        permuteRef(host, [2, 0, 1]),
        'permute',
      );
      await expectExact(
        slice(x, [1, 1, 2], [3, 4, 7]),
        sliceRef(host, [1, 1, 2], [3, 4, 7]),
        'slice',
      );
      const pads = [
        [1, -1],
        [0, 2],
        [-2, 3],
      ];
      await expectExact(pad(x, pads, 2), padRef(host, pads, 2), 'pad');
      await expectExact(
        concat([x, x], 2),
        concatRef([host, host], 2),
        'concat',
      );
      await expectExact(
        indexSelect(x, 2, [6, 0, 3]),
        indexSelectRef(host, 2, [6, 0, 3]),
        'indexSelect',
      );
      const [row, r] = hostAndDevice([5, 1], 51);
      await expectExact(
        broadcastTo(r, [3, 5, 7]),
        broadcastToRef(row, [3, 5, 7]),
        'broadcastTo',
      );
      x.dispose();
      r.dispose();
    });
  }

  it('indexSelect gradient with runs of 3', async () => {
    runOptions.elementsPerInvocation = 3;
    const result = await gradCheck(
      (x) => indexSelect(x, 1, [2, 0, 2]),
      (x) => indexSelectRef(x, 1, [2, 0, 2]),
      [{ shape: [2, 3, 5], seed: 52 }],
    );
    expect(result.ok, result.report).toBe(true);
  });
});

describe('layout methods', () => {
  it('tensor methods call the ops', async () => {
    const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    expect(Array.from(await x.transpose(0, 1).toArray())).toEqual([
      1, 4, 2, 5, 3, 6,
    ]);
    expect(Array.from(await x.permute([1, 0]).toArray())).toEqual([
      1, 4, 2, 5, 3, 6,
    ]);
    expect(Array.from(await x.slice([1], [2]).toArray())).toEqual([4, 5, 6]);
    expect(Array.from(await x.narrow(1, 2, 1).toArray())).toEqual([3, 6]);
    const padded = x.pad([
      [0, 0],
      [1, 0],
    ]);
    expect(Array.from(await padded.toArray())).toEqual([
      0, 1, 2, 3, 0, 4, 5, 6,
    ]);
    expect(x.broadcastTo([4, 2, 3]).shape).toEqual([4, 2, 3]);
    expect(Array.from(await x.indexSelect(1, [2, 0]).toArray())).toEqual([
      3, 1, 6, 4,
    ]);
    expect(x.unsqueeze(0).squeeze().shape).toEqual([2, 3]);
    x.dispose();
  });
});

describe('layout backward', () => {
  it('permute and transpose gradients', async () => {
    for (const dims of [
      [2, 0, 1],
      [1, 2, 0],
    ]) {
      const result = await gradCheck(
        (x) => permute(x, dims),
        (x) => permuteRef(x, dims),
        [{ shape: [3, 4, 5], seed: 20 }],
      );
      expect(result.ok, result.report).toBe(true);
    }
    const swapped = await gradCheck(
      (x) => transpose(x, 1, 3),
      (x) => permuteRef(x, [0, 3, 2, 1]),
      [{ shape: [2, 3, 2, 4], seed: 21 }],
    );
    expect(swapped.ok, swapped.report).toBe(true);
  });

  it('slice and narrow gradients', async () => {
    const boxed = await gradCheck(
      (x) => slice(x, [1, 0, 2], [3, 4, 5]),
      (x) => sliceRef(x, [1, 0, 2], [3, 4, 5]),
      [{ shape: [3, 5, 7], seed: 22 }],
    );
    expect(boxed.ok, boxed.report).toBe(true);
    const narrowed = await gradCheck(
      (x) => narrow(x, 0, 2, 3),
      (x) => sliceRef(x, [2, 0], [5, 3]),
      [{ shape: [6, 3], seed: 23 }],
    );
    expect(narrowed.ok, narrowed.report).toBe(true);
  });

  it('pad gradient with padding and cropping', async () => {
    for (const pads of [
      [
        [1, 2],
        [0, 3],
        [2, 0],
      ],
      [
        [-1, 1],
        [2, -2],
        [0, -1],
      ],
    ]) {
      const result = await gradCheck(
        (x) => pad(x, pads, 0.25),
        (x) => padRef(x, pads, 0.25),
        [{ shape: [3, 4, 5], seed: 24 }],
      );
      expect(result.ok, result.report).toBe(true);
    }
  });

  it('concat gradient reaches every input', async () => {
    const result = await gradCheck(
      (a, b, c) => concat([a, b, c], 1),
      (a, b, c) => concatRef([a, b, c], 1),
      [
        { shape: [2, 3, 4], seed: 25 },
        { shape: [2, 1, 4], seed: 26 },
        { shape: [2, 2, 4], seed: 27, requiresGrad: false },
      ],
    );
    expect(result.ok, result.report).toBe(true);
    const last = await gradCheck(
      (a, b) => concat([a, b], -1),
      (a, b) => concatRef([a, b], 1),
      [
        { shape: [3, 2], seed: 28 },
        { shape: [3, 5], seed: 29 },
      ],
    );
    expect(last.ok, last.report).toBe(true);
  });

  it('indexSelect gradient accumulates repeats', async () => {
    const indices = [3, 0, 3, 1, 3];
    const result = await gradCheck(
      (x) => indexSelect(x, 1, indices),
      (x) => indexSelectRef(x, 1, indices),
      [{ shape: [2, 4, 3], seed: 30 }],
    );
    expect(result.ok, result.report).toBe(true);
    const onDevice = await gradCheck(
      (x) => indexSelect(x, 0, tensor([1, 1, 0], [3])),
      (x) => indexSelectRef(x, 0, [1, 1, 0]),
      [{ shape: [3, 5], seed: 31 }],
    );
    expect(onDevice.ok, onDevice.report).toBe(true);
  });

  it('squeeze and unsqueeze gradients', async () => {
    const reshaped = (x: NDArray, shape: number[]) => ({ shape, data: x.data });
    const squeezed = await gradCheck(
      (x) => squeeze(x, 1),
      (x) => reshaped(x, [3, 4]),
      [{ shape: [3, 1, 4], seed: 33 }],
    );
    expect(squeezed.ok, squeezed.report).toBe(true);
    const unsqueezed = await gradCheck(
      (x) => unsqueeze(x, -1),
      (x) => reshaped(x, [3, 4, 1]),
      [{ shape: [3, 4], seed: 34 }],
    );
    expect(unsqueezed.ok, unsqueezed.report).toBe(true);
  });

  it('broadcastTo gradient sums repeats', async () => {
    for (const [from, to] of [
      [[5, 1], [3, 5, 7]],
      [[3, 1, 4], [2, 3, 5, 4]],
    ]) {
      const result = await gradCheck(
        (x) => broadcastTo(x, to),
        (x) => broadcastToRef(x, to),
        [{ shape: from, seed: 32 }],
      );
      expect(result.ok, result.report).toBe(true);
    }
  });
});

describe('layout errors', () => {
  it('permute not a permutation', () => {
    const x = tensor(new Float32Array(105), [3, 5, 7]);
    expect(() => permute(x, [0, 0, 2])).toThrow(
      'permute: dims [0,0,2] are not a permutation of the 3 axes of shape [3,5,7]',
    );
    expect(() => permute(x, [1, 0])).toThrow(
      'permute: dims [1,0] are not a permutation',
    );
    expect(() => transpose(x, 0, 3)).toThrow(
      'transpose: axis 3 is out of range for shape [3,5,7]',
    );
    x.dispose();
  });

  it('slice out of range', () => {
    const x = tensor(new Float32Array(105), [3, 5, 7]);
    expect(() => slice(x, [0, 2], [3, 9])).toThrow(
      'slice: range [2, 9) is out of bounds for axis 1 of shape [3,5,7] (size 5',
    );
    expect(() => slice(x, [2], [1])).toThrow(
      'slice: range [2, 1) is out of bounds for axis 0',
    );
    expect(() => slice(x, [0], [1, 2])).toThrow(
      'slice: starts [0] and ends [1,2] must have the same length',
    );
    expect(() => narrow(x, 2, 5, 3)).toThrow(
      'narrow: start 5 and length 3 leave axis 2 of shape [3,5,7] (size 7)',
    );
    x.dispose();
  });

  it('pad wrong length or over-cropping', () => {
    const x = tensor(new Float32Array(105), [3, 5, 7]);
    expect(() => pad(x, [[1, 1]])).toThrow(
      'pad: expected 3 [before, after] pairs for shape [3,5,7], got [[1,1]]',
    );
    expect(() => pad(x, [[0, 0], [0, 0], [1]])).toThrow(
      'pad: expected 3 [before, after] pairs',
    );
    expect(() => pad(x, [[0, 0], [-3, -3], [0, 0]])).toThrow(
      'pad: pads [-3, -3] are invalid for axis 1 of shape [3,5,7]',
    );
    x.dispose();
  });

  it('concat shape mismatch and empty list', () => {
    const a = tensor(new Float32Array(6), [2, 3]);
    const b = tensor(new Float32Array(8), [2, 4]);
    expect(() => concat([a, b], 0)).toThrow(
      'concat: tensor 1 has shape [2,4] but tensor 0 has [2,3]; shapes must match except along axis 0',
    );
    expect(() => concat([], 0)).toThrow(
      'concat: expected at least one tensor, got none',
    );
    expect(() => concat([a, b], 2)).toThrow(
      'concat: axis 2 is out of range for shape [2,3]',
    );
    a.dispose();
    b.dispose();
  });

  it('indexSelect and broadcastTo bad input', () => {
    const x = tensor(new Float32Array(105), [3, 5, 7]);
    expect(() => indexSelect(x, 1, [0, 5])).toThrow(
      'indexSelect: index 5 at position 1 is out of range for axis 1 of shape [3,5,7] (size 5)',
    );
    expect(() => indexSelect(x, 1, [-1])).toThrow(
      'indexSelect: index -1 at position 0',
    );
    const grid = tensor([0, 1, 2, 3], [2, 2]);
    expect(() => indexSelect(x, 1, grid)).toThrow(
      'indexSelect: indices must be a 1-D tensor, got shape [2,2]',
    );
    expect(() => broadcastTo(x, [3, 4, 7])).toThrow(
      'broadcastTo: shapes [3,5,7] and [3,4,7] cannot be broadcast together',
    );
    expect(() => broadcastTo(x, [5, 7])).toThrow(
      'broadcastTo: shape [3,5,7] cannot be broadcast to [5,7] (the result would be [3,5,7])',
    );
    x.dispose();
    grid.dispose();
  });
});
