import { beforeAll, describe, expect, it } from 'vitest';
// Fixture text through vite's `?raw` import, which works in Node and in the
// browser project alike.
import conv3dTorchJson from './fixtures/conv3d-torch.json?raw';
import { conv3d, convTranspose3d } from '../src/ops/conv.js';
import { backward, gradCheck, tensor } from '../src/index.js';
import { conv3dRef, convTranspose3dRef, type ConvParams } from '../src/reference/conv.js';
import type { NDArray } from '../src/reference/ndarray.js';
import { device, expectClose, hostAndDevice } from './helpers.js';

beforeAll(device);

type T3 = [number, number, number];

interface Case {
  name: string;
  x: number[];
  weight: number[];
  bias: boolean;
  stride: T3;
  padding: T3;
  dilation: T3;
}

const CASES: Case[] = [
  { name: 'k3 padding 1', x: [1, 3, 7, 5, 9], weight: [5, 3, 3, 3, 3], bias: true, stride: [1, 1, 1], padding: [1, 1, 1], dilation: [1, 1, 1] },
  { name: 'k3 stride 2 odd sizes', x: [2, 2, 7, 5, 9], weight: [6, 2, 3, 3, 3], bias: true, stride: [2, 2, 2], padding: [1, 1, 1], dilation: [1, 1, 1] },
  { name: 'k1 pointwise', x: [1, 4, 3, 5, 7], weight: [3, 4, 1, 1, 1], bias: false, stride: [1, 1, 1], padding: [0, 0, 0], dilation: [1, 1, 1] },
  // Padding past dilation * (k - 1): the input gradient cannot use the
  // reversed-kernel direct path and takes the gather kernel.
  { name: 'k1 padding 1', x: [1, 2, 3, 4, 5], weight: [3, 2, 1, 1, 1], bias: true, stride: [1, 1, 1], padding: [1, 1, 1], dilation: [1, 1, 1] },
  { name: 'k2 stride 2', x: [1, 3, 6, 5, 7], weight: [4, 3, 2, 2, 2], bias: true, stride: [2, 2, 2], padding: [0, 0, 0], dilation: [1, 1, 1] },
  { name: 'per-axis stride padding dilation', x: [1, 2, 7, 8, 9], weight: [3, 2, 3, 2, 3], bias: true, stride: [1, 2, 3], padding: [2, 0, 1], dilation: [2, 1, 1] },
];

function params(c: Case): ConvParams {
  return { stride: c.stride, padding: c.padding, dilation: c.dilation };
}

describe('conv3d forward', () => {
  for (const c of CASES) {
    it(`conv3d ${c.name}`, async () => {
      const [xh, x] = hostAndDevice(c.x, 1);
      const [wh, w] = hostAndDevice(c.weight, 2);
      const [bh, b] = c.bias ? hostAndDevice([c.weight[0]], 3) : [null, null];
      const out = conv3d(x, w, b, params(c));
      const ref = conv3dRef(xh, wh, bh, params(c));
      expect(out.shape).toEqual(ref.shape);
      // Sums of about 100 products: rtol 1e-5 of the largest output.
      expectClose(await out.toArray(), ref.data, 1e-5, 1e-6);
    });
  }
});

describe('conv3d backward', () => {
  for (const c of CASES) {
    it(`conv3d gradients ${c.name}`, async () => {
      const inputs = [{ shape: c.x }, { shape: c.weight }];
      if (c.bias) inputs.push({ shape: [c.weight[0]] });
      const result = await gradCheck(
        (x, w, b) => conv3d(x, w, b ?? null, params(c)),
        (x: NDArray, w: NDArray, b?: NDArray) => conv3dRef(x, w, b ?? null, params(c)),
        inputs,
        { rtol: 1e-3, atol: 1e-4 },
      );
      expect(result.ok, result.report).toBe(true);
    });
  }
});

const TRANSPOSE_CASES = [
  { name: 'k2 stride 2', x: [1, 3, 3, 4, 5], weight: [3, 4, 2, 2, 2], stride: [2, 2, 2] as T3, padding: [0, 0, 0] as T3, outputPadding: [0, 0, 0] as T3, dilation: [1, 1, 1] as T3 },
  { name: 'k3 stride 2 padding 1 output padding 1', x: [2, 2, 3, 4, 5], weight: [2, 3, 3, 3, 3], stride: [2, 2, 2] as T3, padding: [1, 1, 1] as T3, outputPadding: [1, 1, 1] as T3, dilation: [1, 1, 1] as T3 },
  { name: 'k3 stride 1', x: [1, 2, 4, 3, 5], weight: [2, 5, 3, 3, 3], stride: [1, 1, 1] as T3, padding: [1, 1, 1] as T3, outputPadding: [0, 0, 0] as T3, dilation: [1, 1, 1] as T3 },
  { name: 'per-axis stride 3 1 2', x: [1, 2, 3, 4, 5], weight: [2, 3, 3, 2, 3], stride: [3, 1, 2] as T3, padding: [1, 0, 1] as T3, outputPadding: [2, 0, 1] as T3, dilation: [1, 1, 1] as T3 },
];

describe('convTranspose3d', () => {
  for (const c of TRANSPOSE_CASES) {
    it(`convTranspose3d ${c.name}`, async () => {
      const [xh, x] = hostAndDevice(c.x, 4);
      const [wh, w] = hostAndDevice(c.weight, 5);
      const [bh, b] = hostAndDevice([c.weight[1]], 6);
      const out = convTranspose3d(x, w, b, c);
      const ref = convTranspose3dRef(xh, wh, bh, c);
      expect(out.shape).toEqual(ref.shape);
      expectClose(await out.toArray(), ref.data, 1e-5, 1e-6);
    });

    it(`convTranspose3d gradients ${c.name}`, async () => {
      const result = await gradCheck(
        (x, w, b) => convTranspose3d(x, w, b, c),
        (x: NDArray, w: NDArray, b: NDArray) => convTranspose3dRef(x, w, b, c),
        [{ shape: c.x }, { shape: c.weight }, { shape: [c.weight[1]] }],
        { rtol: 1e-3, atol: 1e-4 },
      );
      expect(result.ok, result.report).toBe(true);
    });
  }
});

describe('conv3d bad input', () => {
  it('conv3d channel mismatch names both shapes', () => {
    const x = tensor(new Float32Array(2 * 27), [1, 2, 3, 3, 3]);
    const w = tensor(new Float32Array(8 * 4 * 27), [8, 4, 3, 3, 3]);
    expect(() => conv3d(x, w)).toThrow(
      'conv3d: input [1,2,3,3,3] has 2 channels but weight [8,4,3,3,3] expects 4',
    );
  });

  it('conv3d kernel larger than padded input', () => {
    const x = tensor(new Float32Array(8), [1, 1, 2, 2, 2]);
    const w = tensor(new Float32Array(27), [1, 1, 3, 3, 3]);
    expect(() => conv3d(x, w)).toThrow(/conv3d: kernel \[3,3,3\].*larger than the padded input \[2,2,2\]/);
  });

  it('conv3d rejects a 4D input', () => {
    const x = tensor(new Float32Array(8), [1, 2, 2, 2]);
    const w = tensor(new Float32Array(27), [1, 1, 3, 3, 3]);
    expect(() => conv3d(x, w)).toThrow('conv3d: input must have 5 dimensions, got shape [1,2,2,2]');
  });

  it('conv3d rejects a wrong bias shape', () => {
    const x = tensor(new Float32Array(27), [1, 1, 3, 3, 3]);
    const w = tensor(new Float32Array(54), [2, 1, 3, 3, 3]);
    const b = tensor([1, 2, 3], [3]);
    expect(() => conv3d(x, w, b)).toThrow('conv3d: bias [3] must have shape [2]');
  });
});

describe('conv3d determinism', () => {
  it('conv3d repeats bitwise', async () => {
    const [, x] = hostAndDevice([1, 3, 7, 6, 5], 9);
    const [, w] = hostAndDevice([4, 3, 3, 3, 3], 10);
    const a = await conv3d(x, w, null, { padding: 1 }).toArray();
    const b = await conv3d(x, w, null, { padding: 1 }).toArray();
    expect(b).toEqual(a);
  });
});

interface TorchArray {
  shape: number[];
  data: number[];
}

interface TorchCase {
  name: string;
  stride: number | T3;
  padding: number | T3;
  dilation?: number | T3;
  output_padding?: number | T3;
  x: TorchArray;
  weight: TorchArray;
  bias: TorchArray;
  out_weights: number[];
  out: TorchArray;
  grad_x: number[];
  grad_weight: number[];
  grad_bias: number[];
}

const fixtures = JSON.parse(conv3dTorchJson) as {
  conv3d: TorchCase[];
  conv_transpose3d: TorchCase[];
};

async function checkAgainstTorch(c: TorchCase, transposed: boolean): Promise<void> {
  const x = tensor(c.x.data, c.x.shape, { requiresGrad: true });
  const w = tensor(c.weight.data, c.weight.shape, { requiresGrad: true });
  const b = tensor(c.bias.data, c.bias.shape, { requiresGrad: true });
  const out = transposed
    ? convTranspose3d(x, w, b, {
        stride: c.stride,
        padding: c.padding,
        outputPadding: c.output_padding,
      })
    : conv3d(x, w, b, { stride: c.stride, padding: c.padding, dilation: c.dilation });
  expect(out.shape).toEqual(c.out.shape);
  // Relative 1e-4 of the largest value: float32 sums against PyTorch's float64.
  expectClose(await out.toArray(), c.out.data, 1e-4, 0, 'output');
  backward(out, tensor(c.out_weights, c.out.shape));
  expectClose(await x.grad!.toArray(), c.grad_x, 1e-4, 0, 'input gradient');
  expectClose(await w.grad!.toArray(), c.grad_weight, 1e-4, 0, 'weight gradient');
  expectClose(await b.grad!.toArray(), c.grad_bias, 1e-4, 0, 'bias gradient');
}

describe('conv3d against PyTorch', () => {
  for (const c of fixtures.conv3d) {
    it(`torch conv3d ${c.name}`, () => checkAgainstTorch(c, false));
  }
  for (const c of fixtures.conv_transpose3d) {
    it(`torch conv_transpose3d ${c.name}`, () => checkAgainstTorch(c, true));
  }
});
