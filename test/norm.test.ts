// Fixture text through vite's `?raw` import, which works in Node and in the
// browser project alike.
import layersTorchJson from './fixtures/layers-torch.json?raw';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { backward, gradCheck, tensor, tidy, type Tensor } from '../src/index.js';
import { normOptions } from '../src/kernels/norm.js';
import { runOptions } from '../src/kernels/runs.js';
import { batchNorm, batchStats } from '../src/ops/batch-norm.js';
import { groupNorm, instanceNorm, layerNorm, layerNormChannels } from '../src/ops/norm.js';
import type { NDArray } from '../src/reference/ndarray.js';
import {
  batchNormRef,
  batchStatsRef,
  groupNormRef,
  instanceNormRef,
  layerNormChannelsRef,
  layerNormRef,
} from '../src/reference/norm.js';
import { device, expectClose, hostAndDevice, randomValues } from './helpers.js';

beforeAll(device);

const DEFAULTS = { ...normOptions };
afterEach(() => {
  Object.assign(normOptions, DEFAULTS);
  runOptions.elementsPerInvocation = 'auto';
});

/** Small pieces and merge blocks, so tiny shapes take every multi-pass path. */
function useSmallPieces(): void {
  Object.assign(normOptions, { chunkSize: 7, mergeBlock: 3, affinePiece: 5 });
}

interface Stored {
  shape: number[];
  data: number[];
}

interface FixtureCase {
  name: string;
  options: Record<string, unknown>;
  inputs: Record<string, Stored>;
  outputs: Stored[];
  grads: Record<string, number[]>;
  running_before?: { mean: number[]; var: number[] };
  running_after?: { mean: number[]; var: number[] };
}

const FIXTURES = JSON.parse(layersTorchJson) as {
  norm: FixtureCase[];
  batch_norm: FixtureCase[];
};

/** Builds the fixtures' upstream gradient, ((7 i) % 11 - 5) / 4 over the flat output. */
function upstreamFor(shape: readonly number[]): Tensor {
  const size = shape.reduce((n, d) => n * d, 1);
  return tensor(
    Float32Array.from({ length: size }, (_, i) => (((7 * i) % 11) - 5) / 4),
    shape,
  );
}

function leaf(stored: Stored): Tensor {
  return tensor(Float32Array.from(stored.data), stored.shape, { requiresGrad: true });
}

function sameBits(x: Float32Array, y: Float32Array): boolean {
  const a = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const b = new Uint32Array(y.buffer, y.byteOffset, y.length);
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

const VOLUME = [2, 3, 5, 6, 7];

describe('normalisation forward', () => {
  for (const pieces of ['default pieces', 'small pieces']) {
    it(`instanceNorm affine ${pieces}`, async () => {
      if (pieces === 'small pieces') useSmallPieces();
      const [xh, x] = hostAndDevice(VOLUME, 1);
      const [wh, w] = hostAndDevice([3], 2);
      const [bh, b] = hostAndDevice([3], 3);
      const out = instanceNorm(x, { weight: w, bias: b });
      expect(out.shape).toEqual(VOLUME);
      // Outputs are O(1); two-pass float32 statistics over 210 elements.
      expectClose(await out.toArray(), instanceNormRef(xh, wh, bh).data, 1e-5, 1e-6);
    });

    it(`groupNorm 3 groups of 2 channels ${pieces}`, async () => {
      if (pieces === 'small pieces') useSmallPieces();
      const shape = [2, 6, 3, 5, 7];
      const [xh, x] = hostAndDevice(shape, 4);
      const [wh, w] = hostAndDevice([6], 5);
      const [bh, b] = hostAndDevice([6], 6);
      const out = groupNorm(x, 3, { weight: w, bias: b, eps: 1e-3 });
      expectClose(await out.toArray(), groupNormRef(xh, 3, wh, bh, 1e-3).data, 1e-5, 1e-6);
    });

    it(`layerNorm over 2 trailing dims ${pieces}`, async () => {
      if (pieces === 'small pieces') useSmallPieces();
      const shape = [3, 5, 4, 7];
      const [xh, x] = hostAndDevice(shape, 7);
      const [wh, w] = hostAndDevice([4, 7], 8);
      const [bh, b] = hostAndDevice([4, 7], 9);
      const out = layerNorm(x, [4, 7], { weight: w, bias: b });
      expectClose(await out.toArray(), layerNormRef(xh, 28, wh, bh).data, 1e-5, 1e-6);
    });

    it(`layerNormChannels ${pieces}`, async () => {
      if (pieces === 'small pieces') useSmallPieces();
      const [xh, x] = hostAndDevice(VOLUME, 10);
      const [wh, w] = hostAndDevice([3], 11);
      const [bh, b] = hostAndDevice([3], 12);
      const out = layerNormChannels(x, { weight: w, bias: b });
      expectClose(await out.toArray(), layerNormChannelsRef(xh, wh, bh).data, 1e-5, 1e-6);
    });
  }

  it('layerNorm on the row kernels', async () => {
    // Slices longer than fusedLimit split across invocations.
    Object.assign(normOptions, { fusedLimit: 8, chunkSize: 5, mergeBlock: 2 });
    const [xh, x] = hostAndDevice([4, 3, 13], 13);
    const [wh, w] = hostAndDevice([3, 13], 14);
    const [bh, b] = hostAndDevice([3, 13], 15);
    const out = layerNorm(x, { axes: [-2, -1] }, { weight: w, bias: b });
    expectClose(await out.toArray(), layerNormRef(xh, 39, wh, bh).data, 1e-5, 1e-6);
  });

  it('without weight and bias', async () => {
    const [xh, x] = hostAndDevice(VOLUME, 16);
    expectClose(await instanceNorm(x).toArray(), instanceNormRef(xh, null, null).data, 1e-5, 1e-6);
    expectClose(await groupNorm(x, 1).toArray(), groupNormRef(xh, 1, null, null).data, 1e-5, 1e-6);
    expectClose(await layerNorm(x, 7).toArray(), layerNormRef(xh, 7, null, null).data, 1e-5, 1e-6);
    expectClose(
      await layerNormChannels(x).toArray(),
      layerNormChannelsRef(xh, null, null).data,
      1e-5,
      1e-6,
    );
  });

  it('groupNorm with one channel per group is instanceNorm', async () => {
    const [, x] = hostAndDevice(VOLUME, 17);
    const grouped = await groupNorm(x, 3).toArray();
    const instance = await instanceNorm(x).toArray();
    expect(sameBits(grouped, instance)).toBe(true);
  });

  it('large mean and small spread', async () => {
    // x = 1000 + 0.1 z: a one-pass E[x^2] - E[x]^2 in float32 would lose
    // the variance (0.01 against 1e6, whose ulp is 0.06) or turn it
    // negative. The two-pass pieces keep it to float32 rounding.
    useSmallPieces();
    const shape = [2, 3, 4, 5, 6];
    const z = randomValues(shape, 18);
    const values = Float32Array.from(z, (v) => 1000 + 0.1 * v);
    const xh: NDArray = { shape, data: Float64Array.from(values) };
    const x = tensor(values, shape);
    const { variance } = batchStats(x);
    expectClose(await variance.toArray(), batchStatsRef(xh).variance.data, 1e-4, 0, 'variance');
    // The mean is a float32 near 1000, off by up to half an ulp (3e-5),
    // which shifts every normalised value by 3e-5 / 0.1 = 3e-4.
    const got = await instanceNorm(x, { eps: 0 }).toArray();
    expectClose(got, instanceNormRef(xh, null, null, 0).data, 2e-4, 0, 'output');
  });

  it('constant input gives the bias', async () => {
    const x = tensor(new Float32Array(2 * 3 * 4).fill(2.5), [2, 3, 4]);
    const bias = tensor([1, -2, 3], [3]);
    const out = await instanceNorm(x, { bias }).toArray();
    expect(Array.from(out)).toEqual([...Array(2)].flatMap(() => [1, -2, 3].flatMap((v) => [v, v, v, v])));
  });
});

describe('normalisation backward', () => {
  const cases: {
    name: string;
    shapes: number[][];
    device: (x: Tensor, w: Tensor, b: Tensor) => Tensor;
    reference: (x: NDArray, w: NDArray, b: NDArray) => NDArray;
    small?: boolean;
  }[] = [
    {
      name: 'instanceNorm',
      shapes: [VOLUME, [3], [3]],
      device: (x, w, b) => instanceNorm(x, { weight: w, bias: b }),
      reference: (x, w, b) => instanceNormRef(x, w, b),
    },
    {
      name: 'instanceNorm small pieces',
      shapes: [[1, 2, 3, 4, 5], [2], [2]],
      device: (x, w, b) => instanceNorm(x, { weight: w, bias: b }),
      reference: (x, w, b) => instanceNormRef(x, w, b),
      small: true,
    },
    {
      name: 'groupNorm',
      shapes: [[2, 6, 3, 4, 5], [6], [6]],
      device: (x, w, b) => groupNorm(x, 2, { weight: w, bias: b }),
      reference: (x, w, b) => groupNormRef(x, 2, w, b),
      small: true,
    },
    {
      name: 'layerNorm fused',
      shapes: [[3, 4, 7], [4, 7], [4, 7]],
      device: (x, w, b) => layerNorm(x, [4, 7], { weight: w, bias: b }),
      reference: (x, w, b) => layerNormRef(x, 28, w, b),
    },
    {
      name: 'layerNormChannels',
      shapes: [VOLUME, [3], [3]],
      device: (x, w, b) => layerNormChannels(x, { weight: w, bias: b }),
      reference: (x, w, b) => layerNormChannelsRef(x, w, b),
      small: true,
    },
    {
      name: 'batchNorm training',
      shapes: [[3, 4, 2, 3, 5], [4], [4]],
      device: (x, w, b) => batchNorm(x, null, null, { weight: w, bias: b, training: true }),
      reference: (x, w, b) =>
        batchNormRef(x, null, null, w, b, { training: true, momentum: 0.1, eps: 1e-5 }).out,
      small: true,
    },
  ];
  for (const c of cases) {
    it(`${c.name} gradients`, async () => {
      if (c.small) useSmallPieces();
      const result = await gradCheck(
        c.device,
        c.reference,
        c.shapes.map((shape, i) => ({ shape, seed: 20 + i })),
        { rtol: 1e-3, atol: 1e-4 },
      );
      expect(result.ok, result.report).toBe(true);
    });
  }

  it('layerNorm row kernels gradients', async () => {
    Object.assign(normOptions, { fusedLimit: 8, chunkSize: 5, mergeBlock: 2, affinePiece: 3 });
    const result = await gradCheck(
      (x, w, b) => layerNorm(x, 13, { weight: w, bias: b }),
      (x, w, b) => layerNormRef(x, 13, w, b),
      [{ shape: [2, 5, 13] }, { shape: [13] }, { shape: [13] }],
    );
    expect(result.ok, result.report).toBe(true);
  });

  it('batchNorm evaluation gradients', async () => {
    const running = { mean: randomValues([3], 30), var: randomValues([3], 31).map((v) => 0.5 + v * v) };
    const mean = tensor(Float32Array.from(running.mean), [3]);
    const variance = tensor(Float32Array.from(running.var), [3]);
    const refMean = { shape: [3], data: Float64Array.from(new Float32Array(running.mean)) };
    const refVar = { shape: [3], data: Float64Array.from(new Float32Array(running.var)) };
    const result = await gradCheck(
      (x, w, b) => batchNorm(x, mean, variance, { weight: w, bias: b }),
      (x, w, b) =>
        batchNormRef(x, refMean, refVar, w, b, { training: false, momentum: 0.1, eps: 1e-5 }).out,
      [{ shape: [2, 3, 2, 3, 4] }, { shape: [3] }, { shape: [3] }],
    );
    expect(result.ok, result.report).toBe(true);
  });

  it('batchStats gradients', async () => {
    useSmallPieces();
    for (const which of ['mean', 'variance'] as const) {
      const result = await gradCheck(
        (x) => batchStats(x)[which],
        (x) => batchStatsRef(x)[which],
        [{ shape: [2, 3, 2, 3, 4] }],
      );
      expect(result.ok, `${which}: ${result.report}`).toBe(true);
    }
  });

  it('gradient reaches only inputs that ask', async () => {
    const [, x] = hostAndDevice([2, 3, 4, 5], 32);
    const [, w] = hostAndDevice([3], 33);
    w.requiresGrad = true;
    const loss = tidy(() => instanceNorm(x, { weight: w }).mul(upstreamFor(x.shape)).sum());
    backward(loss);
    expect(x.grad).toBeNull();
    expect(w.grad?.shape).toEqual([3]);
  });
});

describe('batch norm running statistics', () => {
  it('batchStats values', async () => {
    useSmallPieces();
    const [xh, x] = hostAndDevice([3, 4, 2, 3, 5], 40);
    const { mean, variance } = batchStats(x);
    const ref = batchStatsRef(xh);
    expect(mean.shape).toEqual([4]);
    expectClose(await mean.toArray(), ref.mean.data, 1e-5, 1e-6, 'mean');
    expectClose(await variance.toArray(), ref.variance.data, 1e-5, 1e-6, 'variance');
  });

  it('training updates running statistics', async () => {
    useSmallPieces();
    const [xh, x] = hostAndDevice([3, 4, 2, 3, 5], 41);
    const [mh, runningMean] = hostAndDevice([4], 42);
    const vh = { shape: [4], data: mh.data.map((v) => Math.fround(1 + v * v)) };
    const runningVar = tensor(Float32Array.from(vh.data), [4]);
    const versionBefore = runningMean.version;
    const out = batchNorm(x, runningMean, runningVar, { training: true, momentum: 0.3 });
    const ref = batchNormRef(xh, mh, vh, null, null, { training: true, momentum: 0.3, eps: 1e-5 });
    expectClose(await out.toArray(), ref.out.data, 1e-5, 1e-6, 'output');
    expectClose(await runningMean.toArray(), ref.runningMean!.data, 1e-5, 1e-6, 'running mean');
    expectClose(await runningVar.toArray(), ref.runningVar!.data, 1e-5, 1e-6, 'running variance');
    expect(runningMean.version).toBe(versionBefore + 1);
  });

  it('evaluation leaves running statistics', async () => {
    const [xh, x] = hostAndDevice([2, 3, 4, 5], 43);
    const [mh, runningMean] = hostAndDevice([3], 44);
    const vh = { shape: [3], data: mh.data.map((v) => Math.fround(0.5 + v * v)) };
    const runningVar = tensor(Float32Array.from(vh.data), [3]);
    const out = batchNorm(x, runningMean, runningVar);
    const ref = batchNormRef(xh, mh, vh, null, null, { training: false, momentum: 0.1, eps: 1e-5 });
    expectClose(await out.toArray(), ref.out.data, 1e-5, 1e-6, 'output');
    expect(Array.from(await runningMean.toArray())).toEqual(Array.from(mh.data));
  });
});

describe('normalisation against PyTorch', () => {
  function run(c: FixtureCase, inputs: Record<string, Tensor>): Tensor[] {
    const o = c.options as { eps?: number; groups?: number; normalized_shape?: number[] };
    const affine = { weight: inputs.weight, bias: inputs.bias, eps: o.eps };
    if (c.name.startsWith('instance_norm')) return [instanceNorm(inputs.x, affine)];
    if (c.name.startsWith('group_norm')) return [groupNorm(inputs.x, o.groups!, affine)];
    if (c.name.startsWith('layer_norm_2d')) return [layerNormChannels(inputs.x, affine)];
    if (c.name.startsWith('layer_norm')) return [layerNorm(inputs.x, o.normalized_shape!, affine)];
    if (c.name === 'batch_stats') {
      const { mean, variance } = batchStats(inputs.x);
      return [mean, variance];
    }
    throw new Error(`no op for fixture ${c.name}`);
  }

  for (const c of FIXTURES.norm) {
    it(c.name, async () => {
      const inputs = Object.fromEntries(Object.entries(c.inputs).map(([k, v]) => [k, leaf(v)]));
      const outs = run(c, inputs);
      for (const [i, out] of outs.entries()) {
        expect(out.shape).toEqual(c.outputs[i].shape);
        expectClose(await out.toArray(), c.outputs[i].data, 1e-4, 1e-6, `output ${i}`);
      }
      const loss = tidy(() =>
        outs.map((out) => out.mul(upstreamFor(out.shape)).sum()).reduce((a, b) => a.add(b)),
      );
      backward(loss);
      for (const [name, expected] of Object.entries(c.grads)) {
        expect(inputs[name].grad, `gradient of ${name}`).not.toBeNull();
        expectClose(await inputs[name].grad!.toArray(), expected, 1e-4, 1e-6, `gradient of ${name}`);
      }
    });
  }

  for (const c of FIXTURES.batch_norm) {
    it(c.name, async () => {
      const o = c.options as { training: boolean; momentum: number; eps: number };
      const inputs = Object.fromEntries(Object.entries(c.inputs).map(([k, v]) => [k, leaf(v)]));
      const c4 = c.inputs.weight.shape;
      const runningMean = tensor(Float32Array.from(c.running_before!.mean), c4);
      const runningVar = tensor(Float32Array.from(c.running_before!.var), c4);
      const out = batchNorm(inputs.x, runningMean, runningVar, {
        weight: inputs.weight,
        bias: inputs.bias,
        training: o.training,
        momentum: o.momentum,
        eps: o.eps,
      });
      expectClose(await out.toArray(), c.outputs[0].data, 1e-4, 1e-6, 'output');
      expectClose(await runningMean.toArray(), c.running_after!.mean, 1e-4, 1e-6, 'running mean');
      expectClose(await runningVar.toArray(), c.running_after!.var, 1e-4, 1e-6, 'running variance');
      const loss = tidy(() => out.mul(upstreamFor(out.shape)).sum());
      backward(loss);
      for (const [name, expected] of Object.entries(c.grads)) {
        expectClose(await inputs[name].grad!.toArray(), expected, 1e-4, 1e-6, `gradient of ${name}`);
      }
    });
  }
});

describe('normalisation determinism', () => {
  const ops: [string, (x: Tensor, w: Tensor, b: Tensor) => Tensor][] = [
    ['instanceNorm', (x, w, b) => instanceNorm(x, { weight: w, bias: b })],
    ['groupNorm', (x, w, b) => groupNorm(x, 3, { weight: w, bias: b })],
    ['layerNormChannels', (x, w, b) => layerNormChannels(x, { weight: w, bias: b })],
    ['batchNorm', (x, w, b) => batchNorm(x, null, null, { weight: w, bias: b, training: true })],
  ];
  for (const [name, op] of ops) {
    it(`${name} repeats bitwise`, async () => {
      useSmallPieces();
      const runs: Float32Array[][] = [];
      for (let k = 0; k < 2; k++) {
        const [, x] = hostAndDevice(VOLUME, 50);
        const [, w] = hostAndDevice([3], 51);
        const [, b] = hostAndDevice([3], 52);
        for (const t of [x, w, b]) t.requiresGrad = true;
        const out = op(x, w, b);
        const loss = tidy(() => out.mul(upstreamFor(out.shape)).sum());
        backward(loss);
        runs.push([await out.toArray(), await x.grad!.toArray(), await w.grad!.toArray(), await b.grad!.toArray()]);
      }
      runs[0].forEach((values, i) => expect(sameBits(values, runs[1][i]), `result ${i}`).toBe(true));
    });
  }
});

describe('normalisation run lengths', () => {
  it('fused kernels give the same bits for run lengths 1, 3 and 32', async () => {
    // CPU adapters normalise runs of 32 positions per invocation, GPUs one.
    const results: Float32Array[][] = [];
    for (const length of [32, 1, 3]) {
      runOptions.elementsPerInvocation = length;
      const [, x] = hostAndDevice(VOLUME, 53);
      const [, w] = hostAndDevice([3], 54);
      x.requiresGrad = true;
      const out = layerNormChannels(x, { weight: w });
      backward(tidy(() => out.mul(upstreamFor(out.shape)).sum()));
      results.push([await out.toArray(), await x.grad!.toArray()]);
    }
    for (const [k, length] of [1, 3].entries()) {
      expect(sameBits(results[k + 1][0], results[0][0]), `output, run ${length}`).toBe(true);
      expect(sameBits(results[k + 1][1], results[0][1]), `gradient, run ${length}`).toBe(true);
    }
  });
});

describe('normalisation errors', () => {
  it('groups must divide channels', () => {
    const x = tensor(new Float32Array(2 * 6 * 4), [2, 6, 4]);
    expect(() => groupNorm(x, 4)).toThrow(
      'groupNorm: groups 4 must be a positive integer that divides the 6 channels of input [2,6,4]',
    );
  });

  it('weight shape', () => {
    const x = tensor(new Float32Array(2 * 3 * 4), [2, 3, 4]);
    const weight = tensor([1, 2], [2]);
    expect(() => instanceNorm(x, { weight })).toThrow(
      'instanceNorm: weight [2] must have shape [3] (one value per channel of input [2,3,4])',
    );
    expect(() => layerNorm(x, [3, 4], { bias: weight })).toThrow(
      'layerNorm: bias [2] must have shape [3,4] (the normalized shape of input [2,3,4])',
    );
    expect(() => batchNorm(x, weight, weight)).toThrow(
      'batchNorm: running mean [2] must have shape [3] (one value per channel of input [2,3,4])',
    );
  });

  it('normalized shape must be trailing', () => {
    const x = tensor(new Float32Array(24), [2, 3, 4]);
    expect(() => layerNorm(x, [3])).toThrow(
      'layerNorm: normalized shape [3] must match the last dimensions of input [2,3,4]',
    );
    expect(() => layerNorm(x, { axes: 1 })).toThrow(
      'layerNorm: axes 1 of input [2,3,4] must be the last ones',
    );
  });

  it('rank, empty input and counts', () => {
    expect(() => instanceNorm(tensor([1, 2], [1, 2]))).toThrow(
      'instanceNorm: input [1,2] must be [N, C, ...spatial] (rank >= 3)',
    );
    expect(() => layerNormChannels(tensor([], [1, 3, 0]))).toThrow(
      'layerNormChannels: input [1,3,0] has no elements to normalise',
    );
    expect(() => instanceNorm(tensor([1, 2], [1, 2, 1]))).toThrow(
      'instanceNorm: input [1,2,1] has one spatial element per channel',
    );
    expect(() => batchNorm(tensor([1, 2], [1, 2]), null, null, { training: true })).toThrow(
      'batchNorm: input [1,2] has 1 value per channel',
    );
    expect(() => batchNorm(tensor([1, 2, 3, 4], [2, 2]), null, null)).toThrow(
      'batchNorm: evaluation mode (training false) needs running statistics',
    );
    expect(() => instanceNorm(tensor([1, 2, 3, 4], [1, 2, 2]), { eps: -1 })).toThrow(
      'instanceNorm: eps must be a finite number >= 0, got -1',
    );
  });
});
