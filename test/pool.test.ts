// Fixture text through vite's `?raw` import, which works in Node and in the
// browser project alike.
import layersTorchJson from './fixtures/layers-torch.json?raw';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { backward, gradCheck, tensor, tidy, type Tensor } from '../src/index.js';
import { runOptions } from '../src/kernels/runs.js';
import { avgPool3d, maxPool3d } from '../src/ops/pool.js';
import type { NDArray } from '../src/reference/ndarray.js';
import { avgPool3dRef, maxPool3dRef, type PoolRefParams, type Triple } from '../src/reference/pool.js';
import { Random } from '../src/random.js';
import { device, expectClose, hostAndDevice } from './helpers.js';

beforeAll(device);
afterEach(() => {
  runOptions.elementsPerInvocation = 'auto';
});

interface Stored {
  shape: number[];
  data: number[];
}

interface FixtureCase {
  name: string;
  options: {
    kernel_size: number | Triple;
    stride: number | Triple | null;
    padding: number | Triple;
    count_include_pad?: boolean;
  };
  inputs: { x: Stored };
  outputs: Stored[];
  grads: { x: number[] };
}

const FIXTURES = JSON.parse(layersTorchJson) as { pool: FixtureCase[] };

/** Builds the fixtures' upstream gradient, ((7 i) % 11 - 5) / 4 over the flat output. */
function upstreamFor(shape: readonly number[]): Tensor {
  const size = shape.reduce((n, d) => n * d, 1);
  return tensor(
    Float32Array.from({ length: size }, (_, i) => (((7 * i) % 11) - 5) / 4),
    shape,
  );
}

/** Shuffles a ramp of values 1/64 apart: no ties, even after a finite-difference step. */
function distinctValues(shape: readonly number[], seed: number): Float64Array {
  const size = shape.reduce((n, d) => n * d, 1);
  const values = Float64Array.from({ length: size }, (_, i) => (i - size / 2) / 64);
  const random = new Random(seed);
  for (let i = size - 1; i > 0; i--) {
    const j = Math.floor(random.uniform() * (i + 1));
    [values[i], values[j]] = [values[j], values[i]];
  }
  return values;
}

function sameBits(x: Float32Array, y: Float32Array): boolean {
  const a = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const b = new Uint32Array(y.buffer, y.byteOffset, y.length);
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function triple(v: number | Triple): Triple {
  return typeof v === 'number' ? [v, v, v] : v;
}

interface Case {
  name: string;
  shape: number[];
  kernelSize: Triple;
  stride: Triple;
  padding: Triple;
}

const CASES: Case[] = [
  { name: 'k3 s2 p1', shape: [2, 3, 5, 6, 7], kernelSize: [3, 3, 3], stride: [2, 2, 2], padding: [1, 1, 1] },
  { name: 'k2 s2', shape: [2, 3, 5, 6, 7], kernelSize: [2, 2, 2], stride: [2, 2, 2], padding: [0, 0, 0] },
  { name: 'k3 s1 p1 overlapping', shape: [1, 2, 4, 5, 3], kernelSize: [3, 3, 3], stride: [1, 1, 1], padding: [1, 1, 1] },
  { name: 'per-axis k 3x2x5 s 2x1x3 p 1x0x2', shape: [1, 2, 5, 6, 7], kernelSize: [3, 2, 5], stride: [2, 1, 3], padding: [1, 0, 2] },
  { name: 'stride past kernel', shape: [1, 2, 7, 6, 5], kernelSize: [2, 1, 2], stride: [3, 2, 4], padding: [1, 0, 0] },
];

function params(c: Case): PoolRefParams {
  return { kernelSize: c.kernelSize, stride: c.stride, padding: c.padding };
}

describe('maxPool3d', () => {
  for (const c of CASES) {
    it(`forward ${c.name}`, async () => {
      const [xh, x] = hostAndDevice(c.shape, 1);
      const out = maxPool3d(x, params(c));
      const ref = maxPool3dRef(xh, params(c)).out;
      expect(out.shape).toEqual(ref.shape);
      // A maximum is a copy of an input: exact.
      expect(Array.from(await out.toArray())).toEqual(Array.from(ref.data));
    });

    it(`gradients ${c.name}`, async () => {
      const result = await gradCheck(
        (x) => maxPool3d(x, params(c)),
        (x: NDArray) => maxPool3dRef(x, params(c)).out,
        [{ shape: c.shape, data: distinctValues(c.shape, 2) }],
        { rtol: 1e-5, atol: 1e-5 },
      );
      expect(result.ok, result.report).toBe(true);
    });
  }

  it('ties go to the first index in window order', async () => {
    // Every window of a constant volume ties: PyTorch picks the window's
    // first element, so each input's gradient counts the windows that
    // start at it.
    const x = tensor(new Float32Array(5 * 5 * 5).fill(3), [1, 1, 5, 5, 5], { requiresGrad: true });
    const p: PoolRefParams = { kernelSize: [3, 3, 3], stride: [1, 1, 1], padding: [1, 1, 1] };
    const out = maxPool3d(x, p);
    backward(tidy(() => out.sum()));
    const ref = maxPool3dRef({ shape: [1, 1, 5, 5, 5], data: new Float64Array(125).fill(3) }, p);
    const expected = new Float64Array(125);
    for (const i of ref.indices) expected[i] += 1;
    expect(Array.from(await x.grad!.toArray())).toEqual(Array.from(expected));
    // With padding 1, the window of output (0, 0, 0) starts at input 0 and
    // so does that of output (1, 1, 1): input 0 takes 8 windows.
    expect(expected[0]).toBe(8);
  });

  it('NaN wins its windows', async () => {
    const data = new Float32Array(2 * 2 * 4).fill(1);
    data[5] = NaN;
    const x = tensor(data, [1, 1, 2, 2, 4]);
    const out = await maxPool3d(x, { kernelSize: [2, 2, 2] }).toArray();
    expect(Number.isNaN(out[0])).toBe(true);
    expect(out[1]).toBe(1);
  });

  it('repeats bitwise', async () => {
    const c = CASES[2];
    const runs: Float32Array[][] = [];
    for (let k = 0; k < 2; k++) {
      const [, x] = hostAndDevice(c.shape, 3);
      x.requiresGrad = true;
      const out = maxPool3d(x, params(c));
      backward(tidy(() => out.mul(upstreamFor(out.shape)).sum()));
      runs.push([await out.toArray(), await x.grad!.toArray()]);
    }
    expect(sameBits(runs[0][0], runs[1][0]), 'output').toBe(true);
    expect(sameBits(runs[0][1], runs[1][1]), 'gradient').toBe(true);
  });
});

describe('avgPool3d', () => {
  for (const c of CASES) {
    for (const countIncludePad of [true, false]) {
      const name = `${c.name} countIncludePad ${countIncludePad}`;
      it(`forward ${name}`, async () => {
        const [xh, x] = hostAndDevice(c.shape, 4);
        const out = avgPool3d(x, { ...params(c), countIncludePad });
        const ref = avgPool3dRef(xh, params(c), countIncludePad);
        expect(out.shape).toEqual(ref.shape);
        // Sums of at most 30 O(1) values.
        expectClose(await out.toArray(), ref.data, 1e-6, 1e-6);
      });

      it(`gradients ${name}`, async () => {
        const result = await gradCheck(
          (x) => avgPool3d(x, { ...params(c), countIncludePad }),
          (x: NDArray) => avgPool3dRef(x, params(c), countIncludePad),
          [{ shape: c.shape }],
          { rtol: 1e-4, atol: 1e-5 },
        );
        expect(result.ok, result.report).toBe(true);
      });
    }
  }

  it('repeats bitwise', async () => {
    const c = CASES[0];
    const runs: Float32Array[][] = [];
    for (let k = 0; k < 2; k++) {
      const [, x] = hostAndDevice(c.shape, 5);
      x.requiresGrad = true;
      const out = avgPool3d(x, { ...params(c), countIncludePad: false });
      backward(tidy(() => out.mul(upstreamFor(out.shape)).sum()));
      runs.push([await out.toArray(), await x.grad!.toArray()]);
    }
    expect(sameBits(runs[0][0], runs[1][0]), 'output').toBe(true);
    expect(sameBits(runs[0][1], runs[1][1]), 'gradient').toBe(true);
  });
});

describe('pooling run lengths', () => {
  // CPU adapters walk runs of 32 elements along W per invocation and GPUs
  // runs of 1; every length must give the same bits.
  async function outputAndGradient(run: (x: Tensor) => Tensor, shape: number[]) {
    const [, x] = hostAndDevice(shape, 6);
    x.requiresGrad = true;
    const out = run(x);
    backward(tidy(() => out.mul(upstreamFor(out.shape)).sum()));
    return [await out.toArray(), await x.grad!.toArray()];
  }

  for (const c of [CASES[0], CASES[3]]) {
    it(`run lengths 1 and 3 ${c.name}`, async () => {
      const ops: [string, (x: Tensor) => Tensor][] = [
        ['maxPool3d', (x) => maxPool3d(x, params(c))],
        ['avgPool3d', (x) => avgPool3d(x, { ...params(c), countIncludePad: false })],
      ];
      for (const [name, op] of ops) {
        runOptions.elementsPerInvocation = 32;
        const expected = await outputAndGradient(op, c.shape);
        for (const length of [1, 3]) {
          runOptions.elementsPerInvocation = length;
          const got = await outputAndGradient(op, c.shape);
          expect(sameBits(got[0], expected[0]), `${name} output, run ${length}`).toBe(true);
          expect(sameBits(got[1], expected[1]), `${name} gradient, run ${length}`).toBe(true);
        }
      }
    });
  }
});

describe('pooling against PyTorch', () => {
  for (const c of FIXTURES.pool) {
    it(c.name, async () => {
      const x = tensor(Float32Array.from(c.inputs.x.data), c.inputs.x.shape, { requiresGrad: true });
      const options = {
        kernelSize: triple(c.options.kernel_size),
        stride: c.options.stride === null ? undefined : triple(c.options.stride),
        padding: triple(c.options.padding),
      };
      const out = c.name.startsWith('max')
        ? maxPool3d(x, options)
        : avgPool3d(x, { ...options, countIncludePad: c.options.count_include_pad });
      expect(out.shape).toEqual(c.outputs[0].shape);
      expectClose(await out.toArray(), c.outputs[0].data, 1e-4, 1e-6, 'output');
      backward(tidy(() => out.mul(upstreamFor(out.shape)).sum()));
      expectClose(await x.grad!.toArray(), c.grads.x, 1e-4, 1e-6, 'gradient');
    });
  }
});

describe('pooling errors', () => {
  const x = () => tensor(new Float32Array(2 * 3 * 5 * 6 * 7), [2, 3, 5, 6, 7]);

  it('kernel larger than padded input', () => {
    expect(() => maxPool3d(x(), { kernelSize: [4, 8, 4], padding: [0, 0, 0] })).toThrow(
      'maxPool3d: kernel [4,8,4] is larger than the padded input [5,6,7] ' +
        '(input [2,3,5,6,7], padding [0,0,0])',
    );
    expect(() => avgPool3d(x(), { kernelSize: 9, padding: 1 })).toThrow(
      'avgPool3d: kernel [9,9,9] is larger than the padded input [7,8,9]',
    );
  });

  it('padding above half the kernel', () => {
    expect(() => avgPool3d(x(), { kernelSize: 3, padding: [1, 2, 1] })).toThrow(
      'avgPool3d: padding [1,2,1] must be at most half the kernel size [3,3,3]',
    );
  });

  it('bad sizes and rank', () => {
    expect(() => maxPool3d(x(), { kernelSize: [2, 2] as unknown as Triple })).toThrow(
      'maxPool3d: kernelSize must be an integer >= 1 or three of them, got [2,2]',
    );
    expect(() => maxPool3d(x(), { kernelSize: 2, stride: 0 })).toThrow(
      'maxPool3d: stride must be an integer >= 1 or three of them, got 0',
    );
    expect(() => maxPool3d(tensor([1, 2, 3, 4], [1, 1, 4]), { kernelSize: 2 })).toThrow(
      'maxPool3d: input [1,1,4] must be [N, C, D, H, W] (rank 5)',
    );
  });
});
