import { beforeAll, describe, expect, it } from 'vitest';
// Fixture text through vite's `?raw` import, which works in Node and in the
// browser project alike.
import warpTorchJson from './fixtures/warp-torch.json?raw';
import { backward, gradCheck, tensor, type Tensor } from '../src/index.js';
import { composeFlows, integrateVelocity, warp } from '../src/ops/warp.js';
import {
  composeFlowsRef,
  integrateVelocityRef,
  warpBackwardRef,
  warpRef,
} from '../src/reference/warp.js';
import type { NDArray } from '../src/reference/ndarray.js';
import { Random } from '../src/random.js';
import { runOptions } from '../src/kernels/runs.js';
import { device, expectClose, randomValues } from './helpers.js';

beforeAll(device);

type Shape5 = [number, number, number, number, number];

function flowShape(image: Shape5): Shape5 {
  return [image[0], 3, image[2], image[3], image[4]];
}

function size(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

/** Normal values times `spread`: points a few voxels away, some outside. */
function randomFlow(shape: Shape5, seed: number, spread: number): Float64Array {
  return randomValues(shape, seed).map((v) => Math.fround(v * spread));
}

/**
 * Whole voxels in [-reach, reach] plus a signed fraction in [0.25, 0.75]:
 * every sample point p + flow(p) stays at least 0.25 from the integer
 * coordinates, where the trilinear sample has kinks.
 */
function kinkFreeFlow(
  shape: Shape5,
  seed: number,
  reach: number,
): Float64Array {
  const random = new Random(seed);
  return Float64Array.from({ length: size(shape) }, () => {
    const whole = Math.floor(random.uniform() * (2 * reach + 1)) - reach;
    const fraction = 0.25 + 0.5 * random.uniform();
    return Math.fround(whole + (random.uniform() < 0.5 ? -fraction : fraction));
  });
}

function host(data: Float64Array, shape: readonly number[]): NDArray {
  return { shape: [...shape], data };
}

function upload(
  data: ArrayLike<number>,
  shape: readonly number[],
  requiresGrad = false,
): Tensor {
  return tensor(Float32Array.from(data), shape, { requiresGrad });
}

/** Both gradients of sum(warp(image, flow) * g) from the float64 reference. */
function backwardRef(
  imageData: Float64Array,
  flowData: Float64Array,
  gData: Float64Array,
  shape: Shape5,
): { image: NDArray; flow: NDArray } {
  return warpBackwardRef(
    host(imageData, shape),
    host(flowData, flowShape(shape)),
    host(gData, shape),
  );
}

describe('warp forward', () => {
  const cases: { name: string; image: Shape5; spread: number }[] = [
    { name: 'three channels odd shape', image: [1, 3, 7, 5, 9], spread: 2 },
    { name: 'batch of two', image: [2, 2, 4, 6, 5], spread: 1.5 },
    { name: 'one channel mostly outside', image: [1, 1, 5, 3, 4], spread: 4 },
    { name: 'thirty-six channels', image: [1, 36, 3, 4, 5], spread: 1 },
  ];
  for (const c of cases) {
    it(`warp linear ${c.name}`, async () => {
      const imageData = randomValues(c.image, 1);
      const flowData = randomFlow(flowShape(c.image), 2, c.spread);
      const flow = flowShape(c.image);
      const out = warp(upload(imageData, c.image), upload(flowData, flow));
      const ref = warpRef(host(imageData, c.image), host(flowData, flow));
      expect(out.shape).toEqual(c.image);
      // Eight weighted float32 products against float64.
      expectClose(await out.toArray(), ref.data, 1e-5, 1e-6);
    });
  }

  it('warp linear image is the flow itself', async () => {
    const shape: Shape5 = [1, 3, 5, 6, 4];
    const flowData = randomFlow(shape, 3, 1.5);
    const flow = upload(flowData, shape);
    const out = warp(flow, flow);
    const ref = warpRef(host(flowData, shape), host(flowData, shape));
    expectClose(await out.toArray(), ref.data, 1e-5, 1e-6);
  });

  it('warp nearest matches the reference', async () => {
    const shape: Shape5 = [2, 2, 5, 4, 6];
    const imageData = randomValues(shape, 4);
    const flowData = randomFlow(flowShape(shape), 5, 2);
    const flow = flowShape(shape);
    const out = warp(upload(imageData, shape), upload(flowData, flow), {
      mode: 'nearest',
    });
    const ref = warpRef(
      host(imageData, shape),
      host(flowData, flow),
      'nearest',
    );
    // Nearest copies values: exact.
    expect(Array.from(await out.toArray())).toEqual(Array.from(ref.data));
  });
});

describe('warp conventions', () => {
  const sizes: Shape5[] = [
    [1, 1, 1, 1, 1],
    [1, 1, 2, 1, 3],
    [1, 2, 3, 4, 5],
    [2, 3, 5, 6, 7],
    [1, 1, 7, 1, 9],
  ];
  for (const shape of sizes) {
    it(`warp zero flow is exact ${shape.join('x')}`, async () => {
      const imageData = Float32Array.from(randomValues(shape, 6));
      const zero = new Float32Array(size(flowShape(shape)));
      const image = tensor(imageData, shape);
      const flow = tensor(zero, flowShape(shape));
      expect(await warp(image, flow).toArray()).toEqual(imageData);
      const nearest = warp(image, flow, { mode: 'nearest' });
      expect(await nearest.toArray()).toEqual(imageData);
    });
  }

  // A flow of +1 along one axis on a non-cubic volume: out at p equals in at
  // p + 1 along that axis, the last slice along it samples outside (0), and
  // the other two axes do not move.
  const axes = [
    { name: 'D', channel: 0 },
    { name: 'H', channel: 1 },
    { name: 'W', channel: 2 },
  ];
  for (const { name, channel } of axes) {
    it(`warp unit flow along ${name} shifts that axis only`, async () => {
      const shape: Shape5 = [1, 1, 5, 6, 7];
      const [, , d, h, w] = shape;
      const imageData = Float32Array.from(randomValues(shape, 7));
      const flowData = new Float32Array(size(flowShape(shape)));
      flowData.fill(1, channel * d * h * w, (channel + 1) * d * h * w);
      const flow = tensor(flowData, flowShape(shape));
      const out = await warp(tensor(imageData, shape), flow).toArray();
      const expected = new Float32Array(out.length);
      for (let z = 0; z < d; z++)
        for (let y = 0; y < h; y++)
          for (let x = 0; x < w; x++) {
            const source = [z, y, x];
            source[channel] += 1;
            const [sz, sy, sx] = source;
            const inside = sz < d && sy < h && sx < w;
            expected[(z * h + y) * w + x] = inside
              ? imageData[(sz * h + sy) * w + sx]
              : 0;
          }
      expect(out).toEqual(expected);
    });
  }

  it('warp integer translation is an exact shift', async () => {
    const shape: Shape5 = [1, 2, 5, 6, 7];
    const [, channels, d, h, w] = shape;
    const shift = [-2, 1, 3];
    const imageData = Float32Array.from(randomValues(shape, 8));
    const flowData = new Float32Array(size(flowShape(shape)));
    const plane = d * h * w;
    shift.forEach((s, axis) => {
      flowData.fill(s, axis * plane, (axis + 1) * plane);
    });
    const flow = tensor(flowData, flowShape(shape));
    const out = await warp(tensor(imageData, shape), flow).toArray();
    const expected = new Float32Array(out.length);
    for (let c = 0; c < channels; c++)
      for (let z = 0; z < d; z++)
        for (let y = 0; y < h; y++)
          for (let x = 0; x < w; x++) {
            const [sz, sy, sx] = [z + shift[0], y + shift[1], x + shift[2]];
            const inside =
              sz >= 0 && sz < d && sy >= 0 && sy < h && sx >= 0 && sx < w;
            expected[((c * d + z) * h + y) * w + x] = inside
              ? imageData[((c * d + sz) * h + sy) * w + sx]
              : 0;
          }
    expect(out).toEqual(expected);
  });

  it('warp nearest keeps label values', async () => {
    const shape: Shape5 = [1, 1, 6, 5, 7];
    const labels = [0, 1, 2, 5, 36];
    const random = new Random(9);
    const labelData = Float32Array.from(
      { length: size(shape) },
      () => labels[Math.floor(random.uniform() * labels.length)],
    );
    const flowData = randomFlow(flowShape(shape), 10, 2);
    const flow = upload(flowData, flowShape(shape));
    const out = await warp(tensor(labelData, shape), flow, {
      mode: 'nearest',
    }).toArray();
    const present = new Set(labelData);
    const foreign = Array.from(out).filter((v) => !present.has(v));
    expect(foreign).toEqual([]);
    // The flow moves labels: not the identity.
    expect(out).not.toEqual(labelData);
  });

  it('warp nearest records no gradient', () => {
    const shape: Shape5 = [1, 1, 2, 3, 4];
    const image = upload(randomValues(shape, 39), shape, true);
    const flowData = randomFlow(flowShape(shape), 40, 1);
    const flow = upload(flowData, flowShape(shape), true);
    const out = warp(image, flow, { mode: 'nearest' });
    expect(out.requiresGrad).toBe(false);
    expect(out.gradFn).toBeNull();
  });

  it('warp nearest rounds ties to even', async () => {
    const shape: Shape5 = [1, 1, 1, 1, 6];
    const imageData = Float32Array.from([10, 11, 12, 13, 14, 15]);
    const flowData = new Float32Array(18);
    flowData.fill(0.5, 12, 18);
    const flow = tensor(flowData, [1, 3, 1, 1, 6]);
    const out = await warp(tensor(imageData, shape), flow, {
      mode: 'nearest',
    }).toArray();
    // w + 0.5 goes to w for even w and to w + 1 for odd w; 5.5 rounds to 6,
    // outside the volume.
    expect(Array.from(out)).toEqual([10, 12, 12, 14, 14, 0]);
  });
});

describe('warp backward', () => {
  const cases: { name: string; image: Shape5; reach: number }[] = [
    { name: 'two channels', image: [1, 2, 3, 4, 5], reach: 1 },
    { name: 'batch of two far flow', image: [2, 1, 4, 3, 5], reach: 3 },
  ];
  for (const c of cases) {
    it(`warp gradients ${c.name}`, async () => {
      const flow = kinkFreeFlow(flowShape(c.image), 11, c.reach);
      const result = await gradCheck(
        (image, f) => warp(image, f),
        (image: NDArray, f: NDArray) => warpRef(image, f),
        [{ shape: c.image }, { shape: flowShape(c.image), data: flow }],
        { rtol: 1e-3, atol: 1e-4 },
      );
      expect(result.ok, result.report).toBe(true);
    });
  }

  it('warp gradient to the flow only', async () => {
    const shape: Shape5 = [1, 3, 3, 4, 5];
    const result = await gradCheck(
      (image, f) => warp(image, f),
      (image: NDArray, f: NDArray) => warpRef(image, f),
      [
        { shape, requiresGrad: false },
        {
          shape: flowShape(shape),
          data: kinkFreeFlow(flowShape(shape), 12, 2),
        },
      ],
      { rtol: 1e-3, atol: 1e-4 },
    );
    expect(result.ok, result.report).toBe(true);
  });

  it('warp gradient to the image only', async () => {
    const shape: Shape5 = [1, 2, 4, 3, 5];
    const result = await gradCheck(
      (image, f) => warp(image, f),
      (image: NDArray, f: NDArray) => warpRef(image, f),
      [
        { shape },
        {
          shape: flowShape(shape),
          data: kinkFreeFlow(flowShape(shape), 13, 2),
          requiresGrad: false,
        },
      ],
      { rtol: 1e-3, atol: 1e-4 },
    );
    expect(result.ok, result.report).toBe(true);
  });

  it('warp gradients when the image is the flow', async () => {
    const shape: Shape5 = [1, 3, 3, 4, 3];
    const result = await gradCheck(
      (f) => warp(f, f),
      (f: NDArray) => warpRef(f, f),
      [{ shape, data: kinkFreeFlow(shape, 14, 1) }],
      { rtol: 1e-3, atol: 1e-4 },
    );
    expect(result.ok, result.report).toBe(true);
  });

  // At an integer coordinate the gradient is the one-sided derivative from
  // the cell above, as in grid_sample. With a zero flow the flow gradient
  // along W is g * (in[w + 1] - in[w]), and g * (0 - in[w]) at the last
  // column.
  it('warp flow gradient at zero flow is the forward difference', async () => {
    const shape: Shape5 = [1, 1, 2, 3, 4];
    const imageData = randomValues(shape, 15);
    const flowData = new Float64Array(size(flowShape(shape)));
    const gData = randomValues(shape, 16);
    const flow = upload(flowData, flowShape(shape), true);
    backward(warp(upload(imageData, shape), flow), upload(gData, shape));
    const ref = backwardRef(imageData, flowData, gData, shape);
    const got = await flow.grad!.toArray();
    expectClose(got, ref.flow.data, 1e-5, 1e-6);
    const plane = size(shape.slice(2));
    expect(got[2 * plane + 3]).toBeCloseTo(-gData[3] * imageData[3], 5);
  });
});

describe('warp image gradient scatter', () => {
  function collapsingFlow(shape: Shape5): Float64Array {
    // Every voxel samples near the same point: all contributions land on
    // the same eight image voxels.
    const [, , d, h, w] = shape;
    const target = [d / 2 - 0.3, h / 2 + 0.2, w / 2 - 0.4];
    const flow = new Float64Array(size(flowShape(shape)));
    const plane = d * h * w;
    for (let s = 0; s < plane; s++) {
      const voxel = [Math.floor(s / (h * w)), Math.floor(s / w) % h, s % w];
      for (let axis = 0; axis < 3; axis++) {
        flow[axis * plane + s] = Math.fround(target[axis] - voxel[axis]);
      }
    }
    return flow;
  }

  async function gradients(
    imageData: Float64Array,
    flowData: Float64Array,
    gData: Float64Array,
    shape: Shape5,
  ): Promise<[Float32Array, Float32Array, Float32Array]> {
    const image = upload(imageData, shape, true);
    const flow = upload(flowData, flowShape(shape), true);
    const out = warp(image, flow);
    const values = await out.toArray();
    backward(out, upload(gData, shape));
    return [values, await image.grad!.toArray(), await flow.grad!.toArray()];
  }

  // Enough voxels for many workgroups, which the device runs concurrently,
  // so the atomic adds arrive in a different order from run to run. Runs of
  // 1 voxel (the GPU setting) give the most invocations.
  for (const run of ['auto', 1] as const) {
    it(`warp repeats bitwise with a collapsed flow, runs ${run}`, async () => {
      const shape: Shape5 = [1, 2, 12, 16, 48];
      const imageData = randomValues(shape, 17);
      const flowData = collapsingFlow(shape);
      const gData = randomValues(shape, 18);
      runOptions.elementsPerInvocation = run;
      try {
        const first = await gradients(imageData, flowData, gData, shape);
        for (let repeat = 0; repeat < 3; repeat++) {
          const again = await gradients(imageData, flowData, gData, shape);
          expect(again[0]).toEqual(first[0]);
          expect(again[1]).toEqual(first[1]);
          expect(again[2]).toEqual(first[2]);
        }
      } finally {
        runOptions.elementsPerInvocation = 'auto';
      }
    });
  }

  it('warp collapsed image gradient within the fixed-point bound', async () => {
    const shape: Shape5 = [1, 1, 7, 6, 5];
    const imageData = randomValues(shape, 19);
    const flowData = collapsingFlow(shape);
    const gData = randomValues(shape, 20);
    const [, imageGrad] = await gradients(imageData, flowData, gData, shape);
    const ref = backwardRef(imageData, flowData, gData, shape);
    // 210 contributions per element: the fixed-point bound 210 * 2^-30 *
    // max|g| is 2e-7 * max|g|; float32 products and the conversion add
    // about 1e-7 relative.
    const maxG = gData.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const fixedPoint = 210 * 2 ** -30 * maxG;
    expectClose(imageGrad, ref.image.data, 1e-6, fixedPoint);
  });

  it('warp image gradient scales with huge and tiny gradients', async () => {
    const shape: Shape5 = [1, 2, 4, 5, 3];
    const imageData = randomValues(shape, 21);
    const flowData = randomFlow(flowShape(shape), 22, 1.5);
    const gData = randomValues(shape, 23);
    const [, base] = await gradients(imageData, flowData, gData, shape);
    // The fixed-point scale is a power of two chosen from max|g|, so g
    // times 2^k gives the gradient times 2^k exactly.
    for (const exponent of [100, -100]) {
      const factor = 2 ** exponent;
      const scaled = gData.map((v) => v * factor);
      const [, grad] = await gradients(imageData, flowData, scaled, shape);
      expect(grad).toEqual(base.map((v) => v * factor));
    }
  });

  it('warp image gradient is NaN for a non-finite upstream', async () => {
    const shape: Shape5 = [1, 1, 3, 4, 5];
    const gData = randomValues(shape, 24);
    gData[7] = Infinity;
    const [, imageGrad] = await gradients(
      randomValues(shape, 25),
      randomFlow(flowShape(shape), 26, 1),
      gData,
      shape,
    );
    expect(Array.from(imageGrad).every(Number.isNaN)).toBe(true);
  });

  // A constant fractional flow moves every cell by one voxel from each
  // voxel to the next along W, so the backward merges the shared corners of
  // every pair within a run; W = 19 ends the row with a short run.
  it('warp gradients for a translation merge runs', async () => {
    const shape: Shape5 = [1, 2, 3, 4, 19];
    const plane = 3 * 4 * 19;
    const flowData = new Float64Array(3 * plane);
    [0.3, -0.6, 0.45].forEach((shift, axis) => {
      flowData.fill(Math.fround(shift), axis * plane, (axis + 1) * plane);
    });
    const imageData = randomValues(shape, 37);
    const gData = randomValues(shape, 38);
    const [, imageGrad, flowGrad] = await gradients(
      imageData,
      flowData,
      gData,
      shape,
    );
    const ref = backwardRef(imageData, flowData, gData, shape);
    expectClose(imageGrad, ref.image.data, 1e-5, 1e-6, 'image gradient');
    expectClose(flowGrad, ref.flow.data, 1e-5, 1e-6, 'flow gradient');
  });

  const scatterShapes: Shape5[] = [
    [2, 3, 5, 4, 11],
    [1, 2, 1, 3, 1],
    [1, 1, 4, 1, 9],
  ];
  for (const shape of scatterShapes) {
    const name = shape.join('x');
    it(`warp gradients match float64 ${name}`, async () => {
      const imageData = randomValues(shape, 27);
      const flowData = randomFlow(flowShape(shape), 28, 2);
      const gData = randomValues(shape, 29);
      const [, imageGrad, flowGrad] = await gradients(
        imageData,
        flowData,
        gData,
        shape,
      );
      const ref = backwardRef(imageData, flowData, gData, shape);
      expectClose(imageGrad, ref.image.data, 1e-5, 1e-6, 'image gradient');
      expectClose(flowGrad, ref.flow.data, 1e-5, 1e-6, 'flow gradient');
    });
  }
});

// The kernels split rows into runs of voxels: long runs on CPU adapters,
// single voxels on GPUs. These cases force other run lengths, including
// one that does not divide W, so every adapter's path is tested here.
describe('warp run lengths', () => {
  for (const run of [1, 3]) {
    it(`warp forward and backward with runs of ${run}`, async () => {
      const shape: Shape5 = [2, 3, 5, 4, 11];
      const imageData = randomValues(shape, 41);
      const flowData = randomFlow(flowShape(shape), 42, 2);
      const gData = randomValues(shape, 43);
      runOptions.elementsPerInvocation = run;
      try {
        const image = upload(imageData, shape, true);
        const flow = upload(flowData, flowShape(shape), true);
        const out = warp(image, flow);
        const nearest = warp(image, flow, { mode: 'nearest' });
        backward(out, upload(gData, shape));
        const flowHost = host(flowData, flowShape(shape));
        const ref = warpRef(host(imageData, shape), flowHost);
        expectClose(await out.toArray(), ref.data, 1e-5, 1e-6, 'output');
        const nearestRef = warpRef(host(imageData, shape), flowHost, 'nearest');
        const nearestGot = Array.from(await nearest.toArray());
        expect(nearestGot).toEqual(Array.from(nearestRef.data));
        const grads = backwardRef(imageData, flowData, gData, shape);
        const imageGrad = await image.grad!.toArray();
        expectClose(imageGrad, grads.image.data, 1e-5, 1e-6, 'image gradient');
        const flowGrad = await flow.grad!.toArray();
        expectClose(flowGrad, grads.flow.data, 1e-5, 1e-6, 'flow gradient');
      } finally {
        runOptions.elementsPerInvocation = 'auto';
      }
    });
  }
});

/** Smallest distance of the integration's sample points to an integer. */
function integrationKinkDistance(v: NDArray, steps: number): number {
  const factor = 2 ** -steps;
  let field: NDArray = { shape: v.shape, data: v.data.map((x) => x * factor) };
  let closest = Infinity;
  for (let step = 0; step < steps; step++) {
    // p + field(p) has the fraction of field(p), since p is an integer.
    for (const value of field.data) {
      closest = Math.min(closest, Math.abs(value - Math.round(value)));
    }
    const moved = warpRef(field, field);
    const next = field.data.map((x, i) => x + moved.data[i]);
    field = { shape: v.shape, data: next };
  }
  return closest;
}

describe('composeFlows and integrateVelocity', () => {
  it('composeFlows matches the reference', async () => {
    const shape: Shape5 = [1, 3, 5, 4, 6];
    const a = randomFlow(shape, 30, 1.5);
    const b = randomFlow(shape, 31, 1.5);
    const out = composeFlows(upload(a, shape), upload(b, shape));
    const ref = composeFlowsRef(host(a, shape), host(b, shape));
    expectClose(await out.toArray(), ref.data, 1e-5, 1e-6);
  });

  it('composeFlows composes two warps', async () => {
    // For integer flows warp(warp(x, a), b) equals warp(x, c) exactly.
    const imageShape: Shape5 = [1, 1, 5, 6, 7];
    const shape = flowShape(imageShape);
    const plane = 5 * 6 * 7;
    const a = new Float32Array(size(shape));
    const b = new Float32Array(size(shape));
    const fill = (t: Float32Array, shift: number[]): void =>
      shift.forEach((s, axis) => t.fill(s, axis * plane, (axis + 1) * plane));
    fill(a, [1, 0, -2]);
    fill(b, [0, 2, 1]);
    const x = upload(randomValues(imageShape, 32), imageShape);
    const twice = warp(warp(x, tensor(a, shape)), tensor(b, shape));
    const once = warp(x, composeFlows(tensor(a, shape), tensor(b, shape)));
    expect(await once.toArray()).toEqual(await twice.toArray());
  });

  it('integrateVelocity matches the reference', async () => {
    const shape: Shape5 = [1, 3, 6, 5, 7];
    const v = randomFlow(shape, 33, 3);
    for (const steps of [0, 3, 7]) {
      const out = integrateVelocity(upload(v, shape), steps);
      const ref = integrateVelocityRef(host(v, shape), steps);
      expectClose(await out.toArray(), ref.data, 1e-5, 1e-6, `steps ${steps}`);
    }
  });

  it('composeFlows gradients', async () => {
    const shape: Shape5 = [1, 3, 4, 5, 6];
    const result = await gradCheck(
      (a, b) => composeFlows(a, b),
      (a: NDArray, b: NDArray) => composeFlowsRef(a, b),
      [
        { shape, data: randomFlow(shape, 34, 1) },
        { shape, data: kinkFreeFlow(shape, 35, 1) },
      ],
      { rtol: 1e-3, atol: 1e-4 },
    );
    expect(result.ok, result.report).toBe(true);
  });

  // Seeds whose sample points all stay more than 1e-3 from the kinks; the
  // first check of each test asserts it.
  const integrationCases = [
    { steps: 2, seed: 42 },
    { steps: 3, seed: 69 },
  ];
  for (const { steps, seed } of integrationCases) {
    it(`integrateVelocity gradients steps ${steps}`, async () => {
      const shape: Shape5 = [1, 3, 4, 5, 6];
      const v = randomFlow(shape, seed, 2 ** steps * 0.7);
      // Finite differences are valid only away from the kinks.
      const distance = integrationKinkDistance(host(v, shape), steps);
      expect(distance).toBeGreaterThan(1e-3);
      const result = await gradCheck(
        (x) => integrateVelocity(x, steps),
        (x: NDArray) => integrateVelocityRef(x, steps),
        [{ shape, data: v }],
        { rtol: 1e-3, atol: 1e-4 },
      );
      expect(result.ok, result.report).toBe(true);
    });
  }
});

describe('warp bad input', () => {
  const image = (shape: number[]): Tensor =>
    tensor(new Float32Array(size(shape)), shape);

  it('warp rejects a flow without 3 channels', () => {
    expect(() => warp(image([1, 1, 5, 6, 7]), image([1, 2, 5, 6, 7]))).toThrow(
      'warp: flow [1,2,5,6,7] must have 3 channels ' +
        '(displacements along D, H, W)',
    );
  });

  it('warp rejects mismatched spatial shapes', () => {
    expect(() => warp(image([1, 1, 5, 6, 7]), image([1, 3, 5, 6, 8]))).toThrow(
      'warp: image [1,1,5,6,7] and flow [1,3,5,6,8] must have the same ' +
        'spatial shape (D, H, W)',
    );
  });

  it('warp rejects mismatched batch sizes', () => {
    expect(() => warp(image([2, 1, 3, 4, 5]), image([1, 3, 3, 4, 5]))).toThrow(
      'warp: image [2,1,3,4,5] and flow [1,3,3,4,5] must have the same ' +
        'batch size',
    );
  });

  it('warp rejects a 4D image', () => {
    expect(() => warp(image([1, 5, 6, 7]), image([1, 3, 5, 6, 7]))).toThrow(
      'warp: image [1,5,6,7] must have 5 dimensions [N, C, D, H, W]',
    );
  });

  it('warp rejects a 4D flow', () => {
    expect(() => warp(image([1, 1, 5, 6, 7]), image([3, 5, 6, 7]))).toThrow(
      'warp: flow [3,5,6,7] must have 5 dimensions [N, 3, D, H, W]',
    );
  });

  it('warp rejects an unknown mode', () => {
    const bad = { mode: 'cubic' } as unknown as { mode: 'linear' };
    const flow = image([1, 3, 2, 2, 2]);
    expect(() => warp(image([1, 1, 2, 2, 2]), flow, bad)).toThrow(
      `warp: mode must be 'linear' or 'nearest', got "cubic"`,
    );
  });

  it('composeFlows rejects flows of different shapes', () => {
    const a = image([1, 3, 4, 5, 6]);
    const b = image([1, 3, 4, 5, 7]);
    expect(() => composeFlows(a, b)).toThrow(
      'composeFlows: flows [1,3,4,5,6] and [1,3,4,5,7] must have the same ' +
        'shape',
    );
  });

  it('integrateVelocity rejects a field without 3 channels', () => {
    expect(() => integrateVelocity(image([1, 2, 4, 5, 6]))).toThrow(
      'integrateVelocity: velocity [1,2,4,5,6] must have 3 channels ' +
        '(displacements along D, H, W)',
    );
  });

  it('integrateVelocity rejects negative steps', () => {
    expect(() => integrateVelocity(image([1, 3, 4, 5, 6]), -1)).toThrow(
      'integrateVelocity: steps must be an integer >= 0, got -1',
    );
  });
});

interface TorchArray {
  shape: number[];
  data: number[];
}

interface TorchCase {
  name: string;
  mode: 'bilinear' | 'nearest';
  image: TorchArray;
  flow: TorchArray;
  out: TorchArray;
  out_weights?: number[];
  grad_image?: number[];
  grad_flow?: number[];
}

const fixtures = JSON.parse(warpTorchJson) as { cases: TorchCase[] };

describe('warp against PyTorch', () => {
  for (const c of fixtures.cases) {
    it(`torch spatial transformer ${c.name}`, async () => {
      const image = tensor(c.image.data, c.image.shape, { requiresGrad: true });
      const flow = tensor(c.flow.data, c.flow.shape, { requiresGrad: true });
      const mode = c.mode === 'bilinear' ? 'linear' : 'nearest';
      const out = warp(image, flow, { mode });
      expect(out.shape).toEqual(c.out.shape);
      // Relative 1e-4 of the largest value: float32 against float64.
      expectClose(await out.toArray(), c.out.data, 1e-4, 0, 'output');
      if (mode === 'nearest') return;
      backward(out, tensor(c.out_weights!, c.out.shape));
      const imageGrad = await image.grad!.toArray();
      expectClose(imageGrad, c.grad_image!, 1e-4, 0, 'image gradient');
      const flowGrad = await flow.grad!.toArray();
      expectClose(flowGrad, c.grad_flow!, 1e-4, 0, 'flow gradient');
    });
  }
});
