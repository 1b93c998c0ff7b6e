// Fixture text through vite's `?raw` import, which works in Node and in the
// browser project alike.
import layersTorchJson from './fixtures/layers-torch.json?raw';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { backward, gradCheck, tensor, tidy, type Tensor } from '../src/index.js';
import { runOptions } from '../src/kernels/runs.js';
import { axisSpans, axisTaps } from '../src/kernels/upsample.js';
import { upsample3d, type Upsample3dOptions } from '../src/ops/upsample.js';
import type { NDArray } from '../src/reference/ndarray.js';
import { upsample3dRef, type Triple, type UpsampleRefParams } from '../src/reference/upsample.js';
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
    mode: 'linear' | 'nearest';
    align_corners: boolean;
    scale: number | Triple | null;
    size: Triple | null;
  };
  inputs: { x: Stored };
  outputs: Stored[];
  grads: { x: number[] };
}

const FIXTURES = JSON.parse(layersTorchJson) as { upsample: FixtureCase[] };

/** Builds the fixtures' upstream gradient, ((7 i) % 11 - 5) / 4 over the flat output. */
function upstreamFor(shape: readonly number[]): Tensor {
  const size = shape.reduce((n, d) => n * d, 1);
  return tensor(
    Float32Array.from({ length: size }, (_, i) => (((7 * i) % 11) - 5) / 4),
    shape,
  );
}

function sameBits(x: Float32Array, y: Float32Array): boolean {
  const a = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const b = new Uint32Array(y.buffer, y.byteOffset, y.length);
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

interface Case {
  name: string;
  shape: number[];
  options: Upsample3dOptions;
}

const CASES: Case[] = [
  { name: 'linear scale 2', shape: [2, 1, 3, 4, 5], options: { scale: 2, mode: 'linear' } },
  {
    name: 'linear scale 2 alignCorners',
    shape: [2, 1, 3, 4, 5],
    options: { scale: 2, mode: 'linear', alignCorners: true },
  },
  { name: 'linear size 7x9x11', shape: [1, 2, 3, 4, 5], options: { size: [7, 9, 11], mode: 'linear' } },
  {
    name: 'linear size 7x9x11 alignCorners',
    shape: [1, 2, 3, 4, 5],
    options: { size: [7, 9, 11], mode: 'linear', alignCorners: true },
  },
  { name: 'linear scale 3x1x2', shape: [1, 2, 3, 4, 5], options: { scale: [3, 1, 2], mode: 'linear' } },
  { name: 'linear scale 1.5', shape: [1, 2, 3, 4, 5], options: { scale: 1.5, mode: 'linear' } },
  { name: 'linear down to 2x3x1', shape: [1, 2, 5, 7, 3], options: { size: [2, 3, 1], mode: 'linear' } },
  {
    name: 'linear size 1 alignCorners',
    shape: [1, 1, 3, 4, 5],
    options: { size: [1, 2, 5], mode: 'linear', alignCorners: true },
  },
  { name: 'nearest scale 2', shape: [2, 1, 3, 4, 5], options: { scale: 2 } },
  { name: 'nearest size 7x9x11', shape: [1, 2, 3, 4, 5], options: { size: [7, 9, 11], mode: 'nearest' } },
  { name: 'nearest scale 2.5', shape: [1, 2, 3, 4, 5], options: { scale: 2.5, mode: 'nearest' } },
  { name: 'nearest down to 2x3x4', shape: [1, 2, 5, 7, 4], options: { size: [2, 3, 4], mode: 'nearest' } },
];

function refParams(c: Case): UpsampleRefParams {
  const inSize = c.shape.slice(2);
  const triple = (v: number | readonly number[]) =>
    (typeof v === 'number' ? [v, v, v] : [...v]) as Triple;
  const scale = c.options.scale === undefined ? null : triple(c.options.scale);
  const outSize = c.options.size
    ? triple(c.options.size)
    : (inSize.map((s, i) => Math.floor(s * scale![i])) as Triple);
  return {
    outSize,
    mode: c.options.mode ?? 'nearest',
    alignCorners: c.options.alignCorners ?? false,
    scale,
  };
}

describe('upsample3d', () => {
  for (const c of CASES) {
    it(`forward ${c.name}`, async () => {
      const [xh, x] = hostAndDevice(c.shape, 1);
      const out = upsample3d(x, c.options);
      const ref = upsample3dRef(xh, refParams(c));
      expect(out.shape).toEqual(ref.shape);
      // Blends of 8 inputs with float32 weights.
      expectClose(await out.toArray(), ref.data, 1e-6, 1e-6);
    });

    it(`gradients ${c.name}`, async () => {
      const result = await gradCheck(
        (x) => upsample3d(x, c.options),
        (x: NDArray) => upsample3dRef(x, refParams(c)),
        [{ shape: c.shape }],
        { rtol: 1e-4, atol: 1e-5 },
      );
      expect(result.ok, result.report).toBe(true);
    });
  }

  it('nearest scale 2 repeats each voxel', async () => {
    const x = tensor([1, 2, 3, 4, 5, 6, 7, 8], [1, 1, 2, 2, 2]);
    const out = await upsample3d(x, { scale: 2 }).toArray();
    // Output (z, y, x) copies input (z >> 1, y >> 1, x >> 1).
    const expected = Array.from({ length: 64 }, (_, o) => {
      const [z, y, w] = [o >> 4, (o >> 2) & 3, o & 3];
      return 1 + 4 * (z >> 1) + 2 * (y >> 1) + (w >> 1);
    });
    expect(Array.from(out)).toEqual(expected);
  });

  it('linear scale 1 is the identity', async () => {
    const [xh, x] = hostAndDevice([1, 2, 3, 4, 5], 2);
    const out = await upsample3d(x, { scale: 1, mode: 'linear' }).toArray();
    expect(Array.from(out)).toEqual(Array.from(xh.data));
  });

  it('spans cover every reader', () => {
    // Brute force: every output whose taps include input i lies in i's span.
    for (const [inSize, outSize, align] of [
      [3, 7, false],
      [4, 9, true],
      [7, 3, false],
      [5, 10, false],
    ] as const) {
      const taps = axisTaps(inSize, outSize, null, 'linear', align);
      const { start, count } = axisSpans(taps, inSize);
      for (let o = 0; o < outSize; o++) {
        for (const i of [taps.first[o], taps.second[o]]) {
          expect(o, `in ${inSize} out ${outSize}: output ${o} reads ${i}`).toBeGreaterThanOrEqual(start[i]);
          expect(o, `in ${inSize} out ${outSize}: output ${o} reads ${i}`).toBeLessThan(start[i] + count[i]);
        }
      }
    }
  });

  it('run lengths 1 and 3', async () => {
    // CPU adapters walk runs of 32 elements along W per invocation and
    // GPUs runs of 1; every length must give the same bits.
    async function outputAndGradient(options: Upsample3dOptions) {
      const [, x] = hostAndDevice([1, 2, 3, 4, 5], 4);
      x.requiresGrad = true;
      const out = upsample3d(x, options);
      backward(tidy(() => out.mul(upstreamFor(out.shape)).sum()));
      return [await out.toArray(), await x.grad!.toArray()];
    }
    for (const options of [CASES[2].options, CASES[9].options]) {
      runOptions.elementsPerInvocation = 32;
      const expected = await outputAndGradient(options);
      for (const length of [1, 3]) {
        runOptions.elementsPerInvocation = length;
        const got = await outputAndGradient(options);
        const name = `${options.mode} run ${length}`;
        expect(sameBits(got[0], expected[0]), `${name} output`).toBe(true);
        expect(sameBits(got[1], expected[1]), `${name} gradient`).toBe(true);
      }
    }
  });

  it('repeats bitwise', async () => {
    const runs: Float32Array[][] = [];
    for (let k = 0; k < 2; k++) {
      const [, x] = hostAndDevice([1, 2, 3, 4, 5], 3);
      x.requiresGrad = true;
      const out = upsample3d(x, { size: [7, 9, 11], mode: 'linear' });
      backward(tidy(() => out.mul(upstreamFor(out.shape)).sum()));
      runs.push([await out.toArray(), await x.grad!.toArray()]);
    }
    expect(sameBits(runs[0][0], runs[1][0]), 'output').toBe(true);
    expect(sameBits(runs[0][1], runs[1][1]), 'gradient').toBe(true);
  });
});

describe('upsample3d against PyTorch', () => {
  for (const c of FIXTURES.upsample) {
    it(c.name, async () => {
      const x = tensor(Float32Array.from(c.inputs.x.data), c.inputs.x.shape, { requiresGrad: true });
      const o = c.options;
      const out = upsample3d(x, {
        mode: o.mode,
        alignCorners: o.align_corners,
        ...(o.size ? { size: o.size } : { scale: o.scale! }),
      });
      expect(out.shape).toEqual(c.outputs[0].shape);
      expectClose(await out.toArray(), c.outputs[0].data, 1e-4, 1e-6, 'output');
      backward(tidy(() => out.mul(upstreamFor(out.shape)).sum()));
      expectClose(await x.grad!.toArray(), c.grads.x, 1e-4, 1e-6, 'gradient');
    });
  }
});

describe('upsample3d errors', () => {
  const x = () => tensor(new Float32Array(60), [1, 1, 3, 4, 5]);

  it('scale or size', () => {
    expect(() => upsample3d(x(), {})).toThrow('upsample3d: give exactly one of scale and size (got neither)');
    expect(() => upsample3d(x(), { scale: 2, size: 4 })).toThrow(
      'upsample3d: give exactly one of scale and size (got both)',
    );
  });

  it('bad values', () => {
    expect(() => upsample3d(x(), { scale: [2, 0, 2] })).toThrow(
      'upsample3d: scale must be a positive number, one or three of them, got [2,0,2]',
    );
    expect(() => upsample3d(x(), { size: [4, 4] as unknown as Triple })).toThrow(
      'upsample3d: size must be a positive integer, one or three of them, got [4,4]',
    );
    expect(() => upsample3d(x(), { scale: 0.25 })).toThrow(
      'upsample3d: scale [0.25,0.25,0.25] turns input [1,1,3,4,5] into an empty output [0,1,1]',
    );
  });

  it('alignCorners with nearest and rank', () => {
    expect(() => upsample3d(x(), { scale: 2, alignCorners: true })).toThrow(
      "upsample3d: alignCorners applies to mode 'linear' only, as in PyTorch",
    );
    expect(() => upsample3d(tensor([1, 2], [1, 2]), { scale: 2 })).toThrow(
      'upsample3d: input [1,2] must be [N, C, D, H, W] (rank 5)',
    );
  });
});
