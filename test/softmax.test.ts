import { beforeAll, describe, expect, it } from 'vitest';
import { gradCheck, logSoftmax, softmax, tensor } from '../src/index.js';
import { runOptions } from '../src/kernels/runs.js';
import { softmaxRef } from '../src/reference/reduce.js';
import { device, expectClose, hostAndDevice } from './helpers.js';

beforeAll(device);

const CASES: { shape: number[]; axis: number }[] = [
  { shape: [3, 5, 7], axis: 0 },
  { shape: [3, 5, 7], axis: 1 },
  { shape: [3, 5, 7], axis: 2 },
  { shape: [3, 5, 7], axis: -1 },
  // Inner sizes 60 and 8 are multiples of 4, so these take the vec4 kernel.
  { shape: [2, 36, 3, 4, 5], axis: 1 },
  { shape: [3, 5, 8], axis: 1 },
  { shape: [1, 1], axis: 1 },
  { shape: [4, 300], axis: -1 },
];

describe('softmax forward', () => {
  for (const log of [false, true]) {
    const name = log ? 'logSoftmax' : 'softmax';
    const op = log ? logSoftmax : softmax;

    it(`${name} against the reference`, async () => {
      let seed = 1;
      for (const { shape, axis } of CASES) {
        const [host, x] = hostAndDevice(shape, seed++);
        const positive = axis < 0 ? axis + shape.length : axis;
        const ref = softmaxRef(host, positive, log);
        const out = op(x, axis);
        expect(out.shape).toEqual(shape);
        const what = `${name} of [${shape}] along ${axis}`;
        expectClose(await out.toArray(), ref.data, 1e-5, 1e-6, what);
        x.dispose();
        out.dispose();
      }
    });

    it(`${name} stable for large inputs`, async () => {
      // exp(1000) overflows float32: only the shifted form stays finite.
      const values = [1000, 1001, 999, -1000, 0, 1000];
      const x = tensor(values, [2, 3]);
      const host = { shape: [2, 3], data: Float64Array.from(values) };
      const got = await op(x, 1).toArray();
      expect(Array.from(got).every(Number.isFinite)).toBe(true);
      expectClose(got, softmaxRef(host, 1, log).data, 1e-5, 1e-6, name);
      x.dispose();
    });
  }

  it('softmax with 1 and 7 positions per invocation', async () => {
    for (const elements of [1, 7]) {
      runOptions.elementsPerInvocation = elements;
      const [host, x] = hostAndDevice([2, 3, 5, 7], 12);
      const ref = softmaxRef(host, 1);
      const what = `softmax, ${elements} per invocation`;
      expectClose(await softmax(x, 1).toArray(), ref.data, 1e-5, 1e-6, what);
      x.dispose();
    }
    runOptions.elementsPerInvocation = 'auto';
  });

  it('softmax over channels sums to one', async () => {
    const shape = [1, 36, 5, 6, 7];
    const [, x] = hostAndDevice(shape, 9);
    const probabilities = await softmax(x, 1).toArray();
    const voxels = 5 * 6 * 7;
    const totals = new Float64Array(voxels);
    for (let c = 0; c < 36; c++) {
      for (let v = 0; v < voxels; v++) {
        totals[v] += probabilities[c * voxels + v];
      }
    }
    expectClose(totals, new Float64Array(voxels).fill(1), 1e-5, 1e-6, 'totals');
    x.dispose();
  });
});

describe('softmax backward', () => {
  const GRAD_CASES: { shape: number[]; axis: number }[] = [
    { shape: [3, 5, 7], axis: 1 },
    { shape: [3, 5, 7], axis: -1 },
    { shape: [2, 4, 3, 2, 2], axis: 1 },
    { shape: [2, 3, 8], axis: 1 },
    { shape: [6], axis: 0 },
  ];

  for (const log of [false, true]) {
    const name = log ? 'logSoftmax' : 'softmax';
    const op = log ? logSoftmax : softmax;

    it(`${name} gradient matches finite differences`, async () => {
      for (const { shape, axis } of GRAD_CASES) {
        const positive = axis < 0 ? axis + shape.length : axis;
        const result = await gradCheck(
          (x) => op(x, axis),
          (x) => softmaxRef(x, positive, log),
          [{ shape, seed: 40 }],
        );
        const what = `${name} [${shape}] axis ${axis}`;
        expect(result.ok, `${what}\n${result.report}`).toBe(true);
      }
    });
  }
});

describe('softmax methods', () => {
  it('tensor methods call the ops', async () => {
    const values = [0, 1, 2, 3, 1, -1];
    const host = { shape: [2, 3], data: Float64Array.from(values) };
    const x = tensor(values, [2, 3]);
    const probabilities = await x.softmax(-1).toArray();
    expectClose(probabilities, softmaxRef(host, 1).data, 1e-5, 1e-6, 'method');
    const logs = await x.logSoftmax(0).toArray();
    expectClose(logs, softmaxRef(host, 0, true).data, 1e-5, 1e-6, 'method');
    x.dispose();
  });
});

describe('softmax errors', () => {
  it('bad axis names the op and shape', () => {
    const x = tensor(new Float32Array(6), [2, 3]);
    expect(() => softmax(x, 2)).toThrow(
      'softmax: axis 2 is out of range for shape [2,3] (valid axes: -2 to 1)',
    );
    expect(() => logSoftmax(x, -3)).toThrow(
      'logSoftmax: axis -3 is out of range for shape [2,3]',
    );
    x.dispose();
  });
});
