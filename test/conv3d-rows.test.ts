// The vec4 forms of the row-segment convolution kernels (conv3d_rows,
// conv3d_transpose_rows), which conv3d and convTranspose3d take when W and
// the output's W are multiples of 4, against the float64 reference,
// against the scalar form, and by finite differences; and the wide-stride
// case that keeps the conv3d_transpose kernel.

import { beforeAll, describe, expect, it } from 'vitest';
import { conv3d, convTranspose3d } from '../src/ops/conv.js';
import { gradCheck } from '../src/index.js';
import { packWeight, type ConvGeometry, type Triple } from '../src/kernels/conv3d.js';
import {
  convRows,
  rowsVariantFor,
  rowsVec4Allowed,
  UNIFORM_WEIGHT_VEC4S,
  weightBinding,
} from '../src/kernels/conv3d_rows.js';
import { empty, type Tensor } from '../src/tensor.js';
import { conv3dRef, convTranspose3dRef, type ConvParams } from '../src/reference/conv.js';
import type { NDArray } from '../src/reference/ndarray.js';
import { device, expectClose, hostAndDevice } from './helpers.js';

beforeAll(device);

interface Case {
  name: string;
  x: number[];
  weight: number[];
  stride: Triple;
  padding: Triple;
  dilation: Triple;
}

const CASES: Case[] = [
  { name: 'k3 padding 1 width 8', x: [1, 3, 3, 5, 8], weight: [5, 3, 3, 3, 3], stride: [1, 1, 1], padding: [1, 1, 1], dilation: [1, 1, 1] },
  { name: 'k3 stride 2 width 16', x: [2, 2, 5, 3, 16], weight: [3, 2, 3, 3, 3], stride: [2, 2, 2], padding: [1, 1, 1], dilation: [1, 1, 1] },
  { name: 'k2 stride 2 width 8', x: [1, 3, 4, 4, 8], weight: [4, 3, 2, 2, 2], stride: [2, 2, 2], padding: [0, 0, 0], dilation: [1, 1, 1] },
  { name: 'dilation 2 padding 2 width 8', x: [1, 2, 5, 4, 8], weight: [3, 2, 3, 3, 3], stride: [1, 1, 1], padding: [2, 2, 2], dilation: [2, 2, 2] },
  { name: 'k1 width 4 six channels', x: [1, 4, 3, 5, 4], weight: [6, 4, 1, 1, 1], stride: [1, 1, 1], padding: [0, 0, 0], dilation: [1, 1, 1] },
  { name: 'k3 width 12', x: [1, 2, 3, 3, 12], weight: [4, 2, 3, 3, 3], stride: [1, 1, 1], padding: [1, 1, 1], dilation: [1, 1, 1] },
  // Four quads of 16 columns each, the blocking of the cpu preset's step.
  { name: 'k3 width 16 sixteen channels', x: [1, 3, 3, 4, 16], weight: [16, 3, 3, 3, 3], stride: [1, 1, 1], padding: [1, 1, 1], dilation: [1, 1, 1] },
  // 40 * 27 * 4 packed vec4s exceed UNIFORM_WEIGHT_VEC4S: a storage binding.
  { name: 'weight past the uniform size', x: [1, 40, 3, 2, 4], weight: [16, 40, 3, 3, 3], stride: [1, 1, 1], padding: [1, 1, 1], dilation: [1, 1, 1] },
];

function params(c: Case): ConvParams {
  return { stride: c.stride, padding: c.padding, dilation: c.dilation };
}

function geometryOf(c: Case): ConvGeometry {
  const inSize = c.x.slice(2) as Triple;
  const kernelSize = c.weight.slice(2) as Triple;
  const outSize = inSize.map(
    (s, i) => Math.floor((s + 2 * c.padding[i] - c.dilation[i] * (kernelSize[i] - 1) - 1) / c.stride[i]) + 1,
  ) as Triple;
  return {
    batch: c.x[0],
    inChannels: c.x[1],
    inSize,
    outChannels: c.weight[0],
    outSize,
    kernelSize,
    stride: c.stride,
    padding: c.padding,
    dilation: c.dilation,
  };
}

/** Packs a case's conv3d weight for `quads` channel quads per invocation. */
function packFor(c: Case, w: Tensor, quads: number): Tensor {
  const taps = c.weight[2] * c.weight[3] * c.weight[4];
  return packWeight('test', w, taps, { count: c.x[1], stride: taps }, { count: c.weight[0], stride: c.x[1] * taps }, quads);
}

describe('conv3d rows vec4 form', () => {
  for (const c of CASES) {
    it(`conv3d ${c.name}`, async () => {
      expect(rowsVec4Allowed(geometryOf(c))).toBe(true);
      const [xh, x] = hostAndDevice(c.x, 1);
      const [wh, w] = hostAndDevice(c.weight, 2);
      const [bh, b] = hostAndDevice([c.weight[0]], 3);
      const out = conv3d(x, w, b, params(c));
      const ref = conv3dRef(xh, wh, bh, params(c));
      expect(out.shape).toEqual(ref.shape);
      // Sums of up to 1080 products: rtol 1e-5 of the largest output.
      expectClose(await out.toArray(), ref.data, 1e-5, 1e-6);
    });

    it(`vec4 and scalar forms agree bitwise ${c.name}`, async () => {
      const geometry = geometryOf(c);
      const [, x] = hostAndDevice(c.x, 4);
      const [, w] = hostAndDevice(c.weight, 5);
      const [, b] = hostAndDevice([c.weight[0]], 6);
      const variant = rowsVariantFor(geometry);
      const packed = packFor(c, w, variant.quads);
      const vec4 = await convRows('test', geometry, x, packed, b, variant, true).toArray();
      const scalar = await convRows('test', geometry, x, packed, b, variant, false).toArray();
      expect(Array.from(vec4)).toEqual(Array.from(scalar));
    });
  }
});

describe('conv3d rows blockings', () => {
  it('picks four quads of 16 columns', () => {
    const c = CASES.find((entry) => entry.name === 'k3 width 16 sixteen channels')!;
    expect(rowsVariantFor(geometryOf(c))).toEqual({ quads: 4, vectors: 4 });
  });

  // The blocking only splits the outputs among invocations, so rowsVariantFor
  // may change without changing any result.
  for (const c of CASES) {
    it(`every blocking agrees bitwise ${c.name}`, async () => {
      const geometry = geometryOf(c);
      const [, x] = hostAndDevice(c.x, 7);
      const [, w] = hostAndDevice(c.weight, 8);
      const [, b] = hostAndDevice([c.weight[0]], 9);
      const outputs: number[][] = [];
      for (const variant of [
        { quads: 1, vectors: 1 },
        { quads: 2, vectors: 2 },
        { quads: 1, vectors: 3 },
        { quads: 4, vectors: 4 },
      ]) {
        const packed = packFor(c, w, variant.quads);
        outputs.push(Array.from(await convRows('test', geometry, x, packed, b, variant).toArray()));
      }
      for (const output of outputs.slice(1)) expect(output).toEqual(outputs[0]);
    });
  }
});

describe('conv3d rows weight split', () => {
  // 40 * 27 * 4 vec4s exceed the uniform array, so conv3d splits the 16
  // output channels into two groups of 8 with uniform weights.
  it('split weight agrees bitwise with one pass', async () => {
    const c = CASES.find((entry) => entry.name === 'weight past the uniform size')!;
    const [, x] = hostAndDevice(c.x, 10);
    const [, w] = hostAndDevice(c.weight, 11);
    const [, b] = hostAndDevice([c.weight[0]], 12);
    const packed = packFor(c, w, 1);
    expect(weightBinding(packed).access).toBe('read');
    const whole = await convRows('test', geometryOf(c), x, packed, b, { quads: 1, vectors: 1 }).toArray();
    const split = await conv3d(x, w, b, params(c)).toArray();
    expect(Array.from(split)).toEqual(Array.from(whole));
  });
});

describe('conv3d rows weight binding', () => {
  it('packed weight binding by size', () => {
    const small = empty([UNIFORM_WEIGHT_VEC4S * 4], 'test');
    const large = empty([UNIFORM_WEIGHT_VEC4S * 4 + 4], 'test');
    expect(weightBinding(small).access).toBe('uniform');
    expect(weightBinding(large).access).toBe('read');
    small.dispose();
    large.dispose();
  });
});

describe('conv3d rows vec4 gradients', () => {
  for (const c of [CASES[0], CASES[1], CASES[3]]) {
    it(`conv3d gradients ${c.name}`, async () => {
      const result = await gradCheck(
        (x, w, b) => conv3d(x, w, b, params(c)),
        (x: NDArray, w: NDArray, b: NDArray) => conv3dRef(x, w, b, params(c)),
        [{ shape: c.x }, { shape: c.weight }, { shape: [c.weight[0]] }],
        { rtol: 1e-3, atol: 1e-4 },
      );
      expect(result.ok, result.report).toBe(true);
    });
  }
});

describe('convTranspose3d rows vec4 form', () => {
  const cases = [
    { name: 'k3 stride 3 width 4', x: [1, 2, 3, 2, 4], weight: [2, 3, 3, 3, 3], stride: 3, padding: 0, outputPadding: 0 },
    { name: 'k3 stride 2 padding 1 width 4', x: [2, 3, 3, 3, 4], weight: [3, 5, 3, 3, 3], stride: 2, padding: 1, outputPadding: 1 },
    { name: 'k4 stride 4 width 4', x: [1, 2, 2, 3, 4], weight: [2, 2, 4, 4, 4], stride: 4, padding: 0, outputPadding: 0 },
  ];
  const triple = (v: number): Triple => [v, v, v];
  for (const c of cases) {
    it(`convTranspose3d ${c.name}`, async () => {
      const options = {
        stride: triple(c.stride),
        padding: triple(c.padding),
        outputPadding: triple(c.outputPadding),
        dilation: triple(1),
      };
      const [xh, x] = hostAndDevice(c.x, 7);
      const [wh, w] = hostAndDevice(c.weight, 8);
      const [bh, b] = hostAndDevice([c.weight[1]], 9);
      const out = convTranspose3d(x, w, b, options);
      const ref = convTranspose3dRef(xh, wh, bh, options);
      expect(out.shape).toEqual(ref.shape);
      expect(out.shape[4] % 4).toBe(0);
      expectClose(await out.toArray(), ref.data, 1e-5, 1e-6);
    });
  }
});

describe('convTranspose3d wide stride', () => {
  // A stride past TRANSPOSE_ROWS_MAX_STRIDE along W takes conv3d_transpose.
  const options = {
    stride: [1, 2, 5] as Triple,
    padding: [0, 1, 1] as Triple,
    outputPadding: [0, 1, 2] as Triple,
    dilation: [1, 1, 1] as Triple,
  };

  it('convTranspose3d stride 5 along W', async () => {
    const [xh, x] = hostAndDevice([1, 2, 2, 3, 3], 10);
    const [wh, w] = hostAndDevice([2, 3, 2, 2, 3], 11);
    const [bh, b] = hostAndDevice([3], 12);
    const out = convTranspose3d(x, w, b, options);
    const ref = convTranspose3dRef(xh, wh, bh, options);
    expect(out.shape).toEqual(ref.shape);
    expectClose(await out.toArray(), ref.data, 1e-5, 1e-6);
  });

  it('convTranspose3d gradients stride 5 along W', async () => {
    const result = await gradCheck(
      (x, w, b) => convTranspose3d(x, w, b, options),
      (x: NDArray, w: NDArray, b: NDArray) => convTranspose3dRef(x, w, b, options),
      [{ shape: [1, 2, 2, 3, 3] }, { shape: [2, 3, 2, 2, 3] }, { shape: [3] }],
      { rtol: 1e-3, atol: 1e-4 },
    );
    expect(result.ok, result.report).toBe(true);
  });
});

describe('convTranspose3d rows vec4 gradients', () => {
  it('convTranspose3d gradients k2 stride 2 width 4', async () => {
    const options = {
      stride: [2, 2, 2] as Triple,
      padding: [0, 0, 0] as Triple,
      outputPadding: [0, 0, 0] as Triple,
      dilation: [1, 1, 1] as Triple,
    };
    // The output is [1, 3, 6, 6, 8], so both gradients take the vec4 forms.
    const result = await gradCheck(
      (x, w, b) => convTranspose3d(x, w, b, options),
      (x: NDArray, w: NDArray, b: NDArray) => convTranspose3dRef(x, w, b, options),
      [{ shape: [1, 2, 3, 3, 4] }, { shape: [2, 3, 2, 2, 2] }, { shape: [3] }],
      { rtol: 1e-3, atol: 1e-4 },
    );
    expect(result.ok, result.report).toBe(true);
  });
});
