// The weight-gradient kernels of conv3d (conv3d_weight_grad_rows for
// widths that are multiples of 4, conv3d_weight_grad otherwise) against a
// float64 sum over all positions, with chunks of one and of many rows.

import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  convWeightGradPartials,
  weightGradPartialsOptions,
  type ConvGeometry,
  type Triple,
} from '../src/kernels/conv3d.js';
import {
  convWeightGradRows,
  sharedLanesFor,
  weightGradLanes,
  weightGradOptions,
  weightGradRowsAllowed,
} from '../src/kernels/conv3d_weight_grad_rows.js';
import { reduceKernel } from '../src/ops/reduce.js';
import type { Tensor } from '../src/tensor.js';
import type { NDArray } from '../src/reference/ndarray.js';
import { device, expectClose, hostAndDevice } from './helpers.js';

beforeAll(device);

const defaultInvocations = weightGradOptions.cpuInvocations;
const defaultSharedFrom = weightGradOptions.sharedFromLanes;
const defaultPartialsInvocations = weightGradPartialsOptions.cpuInvocations;
afterEach(() => {
  weightGradOptions.cpuInvocations = defaultInvocations;
  weightGradOptions.sharedFromLanes = defaultSharedFrom;
  weightGradPartialsOptions.cpuInvocations = defaultPartialsInvocations;
});

interface Case {
  name: string;
  x: number[];
  gChannels: number;
  kernel: Triple;
  stride: Triple;
  padding: Triple;
  dilation: Triple;
}

const CASES: Case[] = [
  { name: 'k3 padding 1 width 8', x: [2, 3, 4, 5, 8], gChannels: 5, kernel: [3, 3, 3], stride: [1, 1, 1], padding: [1, 1, 1], dilation: [1, 1, 1] },
  { name: 'k3 stride 2 width 16', x: [1, 2, 5, 6, 16], gChannels: 4, kernel: [3, 3, 3], stride: [2, 2, 2], padding: [1, 1, 1], dilation: [1, 1, 1] },
  { name: 'k2 stride 2 width 8', x: [1, 4, 4, 6, 8], gChannels: 3, kernel: [2, 2, 2], stride: [2, 2, 2], padding: [0, 0, 0], dilation: [1, 1, 1] },
  { name: 'dilation 2 padding 3 width 12', x: [1, 2, 5, 4, 12], gChannels: 2, kernel: [3, 3, 3], stride: [1, 1, 1], padding: [3, 3, 3], dilation: [2, 2, 2] },
  { name: 'one input channel width 8', x: [1, 1, 3, 4, 8], gChannels: 4, kernel: [3, 3, 3], stride: [1, 1, 1], padding: [1, 1, 1], dilation: [1, 1, 1] },
  // 30 * 9 lanes of two x channels each: more than four workgroups of 64.
  { name: 'sixty channels width 4', x: [1, 60, 3, 3, 4], gChannels: 2, kernel: [3, 3, 3], stride: [1, 1, 1], padding: [1, 1, 1], dilation: [1, 1, 1] },
  { name: 'k3 padding 1 width 7', x: [1, 3, 4, 5, 7], gChannels: 6, kernel: [3, 3, 3], stride: [1, 1, 1], padding: [1, 1, 1], dilation: [1, 1, 1] },
];

function geometryOf(c: Case): ConvGeometry {
  const inSize = c.x.slice(2) as Triple;
  const outSize = inSize.map(
    (s, i) => Math.floor((s + 2 * c.padding[i] - c.dilation[i] * (c.kernel[i] - 1) - 1) / c.stride[i]) + 1,
  ) as Triple;
  return {
    batch: c.x[0],
    inChannels: c.x[1],
    inSize,
    outChannels: c.gChannels,
    outSize,
    kernelSize: c.kernel,
    stride: c.stride,
    padding: c.padding,
    dilation: c.dilation,
  };
}

/** Computes the weight gradient [Cg, Cx, kD, kH, kW] as a float64 sum. */
function weightGradRef(x: NDArray, g: NDArray, geometry: ConvGeometry): Float64Array {
  const [n, cx, d, h, w] = x.shape;
  const [, cg, od, oh, ow] = g.shape;
  const [kd, kh, kw] = geometry.kernelSize;
  const { stride, padding, dilation } = geometry;
  const out = new Float64Array(cg * cx * kd * kh * kw);
  for (let b = 0; b < n; b++)
    for (let a = 0; a < cg; a++)
      for (let c = 0; c < cx; c++)
        for (let i = 0; i < kd; i++)
          for (let j = 0; j < kh; j++)
            for (let k = 0; k < kw; k++) {
              let sum = 0;
              for (let p = 0; p < od; p++)
                for (let q = 0; q < oh; q++)
                  for (let r = 0; r < ow; r++) {
                    const z = p * stride[0] + i * dilation[0] - padding[0];
                    const y = q * stride[1] + j * dilation[1] - padding[1];
                    const v = r * stride[2] + k * dilation[2] - padding[2];
                    if (z < 0 || z >= d || y < 0 || y >= h || v < 0 || v >= w) continue;
                    const gi = (((b * cg + a) * od + p) * oh + q) * ow + r;
                    const xi = (((b * cx + c) * d + z) * h + y) * w + v;
                    sum += g.data[gi] * x.data[xi];
                  }
              out[((a * cx + c) * kd + i) * kh * kw + j * kw + k] += sum;
            }
  return out;
}

async function weightGrad(x: Tensor, g: Tensor, geometry: ConvGeometry): Promise<Float32Array> {
  const partial = weightGradRowsAllowed(x, g)
    ? convWeightGradRows('test', x, g, geometry)
    : convWeightGradPartials('test', x, g, geometry);
  const summed = reduceKernel('test', 'sum', partial, [0], false);
  partial.dispose();
  return summed.toArray();
}

describe('conv3d weight gradient kernels', () => {
  for (const c of CASES) {
    // 64 invocations leave one chunk of many rows; 65,536 one row per chunk.
    for (const invocations of [0, 64, 1 << 16]) {
      const name = invocations === 0 ? 'default invocations' : `${invocations} invocations`;
      it(`weight gradient ${c.name}, ${name}`, async () => {
        if (invocations > 0) {
          weightGradOptions.cpuInvocations = invocations;
          weightGradPartialsOptions.cpuInvocations = invocations;
        }
        const geometry = geometryOf(c);
        const [xh, x] = hostAndDevice(c.x, 1);
        const [gh, g] = hostAndDevice([c.x[0], c.gChannels, ...geometry.outSize], 2);
        const got = await weightGrad(x, g, geometry);
        // Sums of up to 640 products: rtol 1e-5 of the largest entry.
        expectClose(got, weightGradRef(xh, gh, geometry), 1e-5, 1e-5);
      });
    }
  }

  // Shapes with at least 32 lanes, where devices with subgroups run the
  // shared form: padded lanes (9 channels are 45 lanes, run as 48), stride
  // 2, rows outside x (padding 3) and a g channel count past a quad.
  const SHARED_CASES: Case[] = [
    { name: 'nine channels k3 padding 1', x: [2, 9, 4, 5, 8], gChannels: 5, kernel: [3, 3, 3], stride: [1, 1, 1], padding: [1, 1, 1], dilation: [1, 1, 1] },
    { name: 'eight channels stride 2', x: [1, 8, 5, 6, 16], gChannels: 6, kernel: [3, 3, 3], stride: [2, 2, 2], padding: [1, 1, 1], dilation: [1, 1, 1] },
    { name: 'eight channels dilation 2 padding 3', x: [1, 8, 5, 4, 12], gChannels: 3, kernel: [3, 3, 3], stride: [1, 1, 1], padding: [3, 3, 3], dilation: [2, 2, 2] },
    { name: 'sixteen channels k2 stride 2', x: [1, 16, 4, 6, 8], gChannels: 4, kernel: [2, 2, 2], stride: [2, 2, 2], padding: [0, 0, 0], dilation: [1, 1, 1] },
    // 90 rows: chunks planned from the padded lanes would hold 2 rows
    // where the plain form's hold 1, and add the partial sums differently.
    { name: 'nine channels ninety rows', x: [1, 9, 10, 9, 4], gChannels: 4, kernel: [3, 3, 3], stride: [1, 1, 1], padding: [1, 1, 1], dilation: [1, 1, 1] },
  ];
  for (const c of SHARED_CASES) {
    it(`shared form matches plain, ${c.name}`, async (context) => {
      const lanes = weightGradLanes(c.x[1], c.kernel[0], c.kernel[1]);
      // The shared form needs subgroups, known once the device is up.
      if (sharedLanesFor(lanes) === 0) context.skip();
      const geometry = geometryOf(c);
      const [xh, x] = hostAndDevice(c.x, 7);
      const [gh, g] = hostAndDevice([c.x[0], c.gChannels, ...geometry.outSize], 8);
      const shared = await weightGrad(x, g, geometry);
      weightGradOptions.sharedFromLanes = false;
      expect(sharedLanesFor(lanes)).toBe(0);
      const plain = await weightGrad(x, g, geometry);
      const differing = shared.findIndex((v, i) => !Object.is(v, plain[i]));
      expect(differing, 'first element where the forms differ').toBe(-1);
      expectClose(shared, weightGradRef(xh, gh, geometry), 1e-5, 1e-5);
    });
  }

  it('weight gradient by rows repeats bitwise', async () => {
    const geometry = geometryOf(CASES[0]);
    const [, x] = hostAndDevice(CASES[0].x, 3);
    const [, g] = hostAndDevice([2, 5, ...geometry.outSize], 4);
    const first = await weightGrad(x, g, geometry);
    const second = await weightGrad(x, g, geometry);
    expect(Array.from(second)).toEqual(Array.from(first));
  });

  it('weight gradient by rows rejects odd widths', () => {
    const c = CASES[6];
    const [, x] = hostAndDevice(c.x, 5);
    const [, g] = hostAndDevice([1, 6, 4, 5, 7], 6);
    expect(() => convWeightGradRows('conv3d', x, g, geometryOf(c))).toThrow(
      'conv3d: the weight gradient by rows needs widths that are multiples of 4, ' +
        'got x [1,3,4,5,7] and g [1,6,4,5,7]',
    );
  });
});
