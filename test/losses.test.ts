// Fixture text through vite's `?raw` import, which works in Node and in the
// browser project alike.
import lossesTorchJson from './fixtures/losses-torch.json?raw';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  backward,
  gradCheck,
  noGrad,
  smoothnessOptions,
  tensor,
  type Tensor,
} from '../src/index.js';
import { diceLoss, diceScore, nccLoss, oneHot, smoothnessLoss } from '../src/ops/losses.js';
import {
  diceLossRef,
  nccRef,
  oneHotRef,
  smoothnessRef,
} from '../src/reference/losses.js';
import type { NDArray } from '../src/reference/ndarray.js';
import { rowGroupOptions } from '../src/kernels/row_groups.js';
import { Random } from '../src/random.js';
import { device, expectClose, hostAndDevice, randomValues } from './helpers.js';

beforeAll(device);

type Triple = [number, number, number];

interface Stored {
  shape: number[];
  data: number[];
}

interface Fixtures {
  ncc: { name: string; window: Triple; a: Stored; b: Stored; loss: number; grad_a: number[]; grad_b: number[] }[];
  smoothness: { name: string; flow: Stored; loss: number; grad_flow: number[] }[];
  dice: {
    name: string;
    exclude_background: boolean;
    probs: Stored;
    target: Stored;
    loss: number;
    grad_probs: number[];
    grad_target: number[];
  }[];
}

const FIXTURES = JSON.parse(lossesTorchJson) as Fixtures;

function leaf(stored: Stored): Tensor {
  return tensor(Float32Array.from(stored.data), stored.shape, { requiresGrad: true });
}

/** Loss value and the gradients of the given leaves after backward. */
async function lossAndGrads(loss: Tensor, leaves: Tensor[]): Promise<[number, Float32Array[]]> {
  const value = await loss.item();
  backward(loss);
  const grads: Float32Array[] = [];
  for (const t of leaves) {
    expect(t.grad, 'gradient reached the input').not.toBeNull();
    grads.push(await t.grad!.toArray());
  }
  return [value, grads];
}

function allFinite(values: ArrayLike<number>): boolean {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return false;
  return true;
}

function sameBits(x: Float32Array, y: Float32Array): boolean {
  const a = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const b = new Uint32Array(y.buffer, y.byteOffset, y.length);
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Seeded softmax probabilities over axis 1 of [N, K, ...spatial]. */
function softmaxValues(shape: number[], seed: number): Float64Array {
  const logits = randomValues(shape, seed);
  const [n, k] = shape;
  const voxels = logits.length / (n * k);
  const out = new Float64Array(logits.length);
  for (let s = 0; s < n; s++)
    for (let v = 0; v < voxels; v++) {
      let total = 0;
      for (let c = 0; c < k; c++) total += Math.exp(logits[(s * k + c) * voxels + v]);
      for (let c = 0; c < k; c++) {
        const i = (s * k + c) * voxels + v;
        out[i] = Math.fround(Math.exp(logits[i]) / total);
      }
    }
  return out;
}

/** Seeded labels in [0, numClasses) as [N, voxels] values. */
function randomLabels(size: number, numClasses: number, seed: number): Uint8Array {
  const random = new Random(seed);
  return Uint8Array.from({ length: size }, () => random.nextUint32() % numClasses);
}

function ndarrayOf(data: ArrayLike<number>, shape: number[]): NDArray {
  return { shape: [...shape], data: Float64Array.from(data) };
}

describe('nccLoss forward', () => {
  const cases: { name: string; shape: number[]; window: Triple }[] = [
    { name: 'window 3', shape: [1, 1, 7, 5, 9], window: [3, 3, 3] },
    { name: 'window 5', shape: [1, 1, 7, 5, 9], window: [5, 5, 5] },
    { name: 'per-axis window 3 5 1', shape: [2, 3, 5, 6, 7], window: [3, 5, 1] },
    // D and H past the 32-position segments exercise the sliding windows'
    // restarts; W is summed in registers and has no segments.
    { name: 'long axes window 5', shape: [1, 1, 37, 34, 35], window: [5, 5, 5] },
    // W % 4 == 0 takes the variant with vec4 input bindings.
    { name: 'aligned rows window 5', shape: [1, 2, 6, 7, 12], window: [5, 5, 5] },
    // A W radius of 5 reaches two quads to each side.
    { name: 'wide W window 11', shape: [1, 1, 5, 4, 23], window: [3, 1, 11] },
    { name: 'long aligned axes window 9', shape: [1, 1, 36, 33, 40], window: [9, 9, 9] },
  ];
  for (const c of cases) {
    it(`ncc ${c.name}`, async () => {
      const [ah, a] = hostAndDevice(c.shape, 1);
      const [bh, b] = hostAndDevice(c.shape, 2);
      const loss = nccLoss(a, b, { window: c.window });
      expect(loss.shape).toEqual([]);
      // cc is in [0, 1] and the box sums are float32: 1e-5 of the value.
      expectClose([await loss.item()], nccRef(ah, bh, c.window).data, 1e-5, 1e-6);
    });
  }

  it('ncc offset intensities', async () => {
    // A mean far from zero makes the variances a difference of large sums.
    const shape = [1, 1, 9, 20, 18];
    const ah = ndarrayOf(randomValues(shape, 3).map((v) => Math.fround(v + 10)), shape);
    const bh = ndarrayOf(randomValues(shape, 4).map((v, i) => Math.fround(10 + v + ah.data[i] - 10)), shape);
    const loss = nccLoss(tensor(Float32Array.from(ah.data), shape), tensor(Float32Array.from(bh.data), shape), {
      window: 5,
    });
    expectClose([await loss.item()], nccRef(ah, bh, [5, 5, 5]).data, 1e-4, 1e-6);
  });

  it('ncc identical textured volumes give -1', async () => {
    for (const shape of [
      [1, 2, 11, 9, 13],
      [1, 1, 10, 9, 12],
    ]) {
      const [, a] = hostAndDevice(shape, 5);
      for (const window of [3, 9]) {
        const loss = await nccLoss(a, a, { window }).item();
        const description = `[${shape}] window ${window}: loss ${loss}`;
        expect(Math.abs(loss + 1), description).toBeLessThanOrEqual(1e-4);
      }
    }
  });

  it('ncc constant images are finite', async () => {
    const shape = [1, 1, 7, 5, 9];
    const size = 7 * 5 * 9;
    const constantA = tensor(new Float32Array(size).fill(0.7), shape, { requiresGrad: true });
    const constantB = tensor(new Float32Array(size).fill(123.25), shape, { requiresGrad: true });
    const [, textured] = hostAndDevice(shape, 6);
    textured.requiresGrad = true;
    for (const [x, y] of [
      [constantA, constantB],
      [constantA, textured],
      [constantA, constantA],
    ]) {
      const [value, grads] = await lossAndGrads(nccLoss(x, y, { window: 3 }), [x, y]);
      expect(Number.isFinite(value), `loss ${value}`).toBe(true);
      expect(allFinite(grads[0]), 'gradient of a').toBe(true);
      expect(allFinite(grads[1]), 'gradient of b').toBe(true);
      for (const t of [x, y]) {
        t.grad?.dispose();
        t.grad = null;
      }
    }
    // With window 1 every window is one voxel and has no variance, so cc is
    // 0 up to the rounding of a * a (the kernel may fuse it into an fma).
    const single = await nccLoss(constantA, textured, { window: 1 }).item();
    expect(Math.abs(single)).toBeLessThanOrEqual(1e-6);
  });
});

describe('nccLoss backward', () => {
  const cases: { name: string; shape: number[]; window: Triple }[] = [
    { name: 'window 3', shape: [1, 1, 7, 5, 9], window: [3, 3, 3] },
    { name: 'window 5', shape: [1, 1, 5, 5, 6], window: [5, 5, 5] },
    { name: 'two channels per-axis window', shape: [2, 2, 3, 5, 4], window: [3, 5, 1] },
    { name: 'long D', shape: [1, 1, 35, 3, 4], window: [3, 3, 3] },
    { name: 'long H', shape: [1, 1, 3, 35, 4], window: [3, 3, 3] },
    { name: 'long W', shape: [1, 1, 3, 4, 35], window: [3, 3, 3] },
    { name: 'aligned rows', shape: [1, 1, 4, 5, 8], window: [3, 3, 3] },
    { name: 'wide W window 11', shape: [1, 1, 3, 3, 16], window: [1, 3, 11] },
  ];
  for (const c of cases) {
    it(`ncc gradients ${c.name}`, async () => {
      const result = await gradCheck(
        (a, b) => nccLoss(a, b, { window: c.window }),
        (a: NDArray, b: NDArray) => nccRef(a, b, c.window),
        [{ shape: c.shape }, { shape: c.shape }],
        { rtol: 1e-3, atol: 1e-5 },
      );
      expect(result.ok, result.report).toBe(true);
    });
  }

  it('ncc gradient of one input only', async () => {
    const shape = [1, 1, 5, 4, 6];
    const result = await gradCheck(
      (a, b) => nccLoss(a, b, { window: 3 }),
      (a: NDArray, b: NDArray) => nccRef(a, b, [3, 3, 3]),
      [{ shape }, { shape, requiresGrad: false }],
      { rtol: 1e-3, atol: 1e-5 },
    );
    expect(result.ok, result.report).toBe(true);
  });
});

describe('nccLoss against PyTorch', () => {
  for (const c of FIXTURES.ncc) {
    it(`ncc torch ${c.name}`, async () => {
      const a = leaf(c.a);
      const b = leaf(c.b);
      const [value, [gradA, gradB]] = await lossAndGrads(nccLoss(a, b, { window: c.window }), [a, b]);
      expectClose([value], [c.loss], 1e-4, 0, 'loss');
      expectClose(gradA, c.grad_a, 1e-4, 0, 'gradient of a');
      expectClose(gradB, c.grad_b, 1e-4, 0, 'gradient of b');
    });
  }
});

describe('nccLoss input checks', () => {
  let a: Tensor;
  beforeAll(() => {
    a = hostAndDevice([1, 1, 7, 5, 9], 1)[1];
  });
  it('ncc window larger than the volume', () => {
    expect(() => nccLoss(a, a, { window: 7 })).toThrow(
      'nccLoss: window [7,7,7] is larger than the volume [1,1,7,5,9] along an axis; ' +
        'the window must fit in [D, H, W] = [7,5,9]',
    );
  });
  it('ncc even window', () => {
    expect(() => nccLoss(a, a, { window: 4 })).toThrow(
      'nccLoss: window 4 must be an odd positive integer or three of them [D, H, W]',
    );
  });
  it('ncc shape mismatch', () => {
    const [, b] = hostAndDevice([1, 1, 7, 5, 8], 2);
    expect(() => nccLoss(a, b, { window: 3 })).toThrow(
      'nccLoss: a [1,1,7,5,9] and b [1,1,7,5,8] must have the same shape',
    );
  });
  it('ncc rank 4 input', () => {
    const [, b] = hostAndDevice([1, 7, 5, 9], 2);
    expect(() => nccLoss(b, b, { window: 3 })).toThrow(
      'nccLoss: a of shape [1,7,5,9] must be a [N, C, D, H, W] volume (rank 5)',
    );
  });
});

describe('nccLoss determinism', () => {
  it('ncc repeats bit for bit', async () => {
    const runs: Float32Array[][] = [];
    for (const shape of [
      [1, 2, 19, 17, 18],
      [1, 2, 19, 17, 20],
      [1, 2, 19, 17, 20],
      [1, 2, 19, 17, 18],
    ]) {
      const [, a] = hostAndDevice(shape, 11);
      const [, b] = hostAndDevice(shape, 12);
      a.requiresGrad = true;
      b.requiresGrad = true;
      const loss = nccLoss(a, b, { window: 9 });
      const value = await loss.toArray();
      backward(loss);
      runs.push([value, await a.grad!.toArray(), await b.grad!.toArray()]);
    }
    // Runs 0 and 3 repeat the unaligned shape, 1 and 2 the aligned one.
    runs[0].forEach((values, i) => expect(sameBits(values, runs[3][i]), `output ${i}`).toBe(true));
    runs[1].forEach((values, i) => expect(sameBits(values, runs[2][i]), `output ${i}`).toBe(true));
  });
});

describe('smoothnessLoss', () => {
  const shapes = [
    [1, 3, 7, 5, 9],
    [2, 2, 4, 3, 2],
    // D past the 32-position segments.
    [1, 1, 70, 3, 4],
    // W % 4 == 0 (vec4 bindings), with partial tiles along H and W.
    [1, 3, 6, 9, 16],
    [1, 2, 5, 8, 12],
  ];
  for (const shape of shapes) {
    it(`smoothness forward [${shape}]`, async () => {
      const [flowHost, flow] = hostAndDevice(shape, 21);
      const loss = smoothnessLoss(flow);
      expect(loss.shape).toEqual([]);
      // A mean of squares of float32 differences: 1e-5 relative.
      expectClose([await loss.item()], smoothnessRef(flowHost).data, 1e-5, 0);
    });
    it(`smoothness gradients [${shape}]`, async () => {
      const result = await gradCheck(smoothnessLoss, smoothnessRef, [{ shape }], {
        rtol: 1e-3,
        atol: 1e-6,
      });
      expect(result.ok, result.report).toBe(true);
    });
  }

  for (const c of FIXTURES.smoothness) {
    it(`smoothness torch ${c.name}`, async () => {
      const flow = leaf(c.flow);
      const [value, [grad]] = await lossAndGrads(smoothnessLoss(flow), [flow]);
      expectClose([value], [c.loss], 1e-4, 0, 'loss');
      expectClose(grad, c.grad_flow, 1e-4, 0, 'gradient of flow');
    });
  }

  it('smoothness repeats bit for bit', async () => {
    const runs: Float32Array[][] = [];
    for (const width of [23, 24, 24, 23]) {
      const [, flow] = hostAndDevice([1, 3, 40, 21, width], 22);
      flow.requiresGrad = true;
      const loss = smoothnessLoss(flow);
      const value = await loss.toArray();
      backward(loss);
      runs.push([value, await flow.grad!.toArray()]);
    }
    // Runs 0 and 3 repeat the unaligned width, 1 and 2 the aligned one.
    runs[0].forEach((values, i) => expect(sameBits(values, runs[3][i]), `output ${i}`).toBe(true));
    runs[1].forEach((values, i) => expect(sameBits(values, runs[2][i]), `output ${i}`).toBe(true));
  });

  it('smoothness tile sizes', async () => {
    // 'auto' picks one tile per kernel for this adapter; GPUs take 1x1.
    const shape = [1, 2, 6, 9, 13];
    const [flowHost, flow] = hostAndDevice(shape, 25);
    const tiles = [
      { rows: 1, quads: 1 },
      { rows: 3, quads: 2 },
      { rows: 4, quads: 4 },
    ];
    try {
      for (const tile of tiles) {
        smoothnessOptions.forwardTile = tile;
        smoothnessOptions.backwardTile = tile;
        const tileName = `tile ${tile.rows}x${tile.quads}`;
        const loss = await smoothnessLoss(flow).item();
        expectClose([loss], smoothnessRef(flowHost).data, 1e-5, 0, tileName);
        const result = await gradCheck(smoothnessLoss, smoothnessRef, [{ shape }], {
          rtol: 1e-3,
          atol: 1e-6,
        });
        expect(result.ok, `${tileName}: ${result.report}`).toBe(true);
      }
    } finally {
      smoothnessOptions.forwardTile = 'auto';
      smoothnessOptions.backwardTile = 'auto';
    }
  });

  it('smoothness in volume groups', async () => {
    // Channel volumes of 315 voxels (1260 bytes) under a 3000-byte binding
    // limit: groups of 2 of the 6 volumes.
    const run = async (): Promise<Float32Array[]> => {
      const [, flow] = hostAndDevice([2, 3, 7, 5, 9], 24);
      flow.requiresGrad = true;
      const loss = smoothnessLoss(flow);
      const value = await loss.toArray();
      backward(loss);
      return [value, await flow.grad!.toArray()];
    };
    const whole = await run();
    rowGroupOptions.maxBindingBytes = 3000;
    let grouped: Float32Array[];
    try {
      grouped = await run();
    } finally {
      rowGroupOptions.maxBindingBytes = 0;
    }
    whole.forEach((values, i) => expect(sameBits(values, grouped[i]), `output ${i}`).toBe(true));
  });

  it('smoothness axis of extent 1', () => {
    const [, flow] = hostAndDevice([1, 3, 1, 5, 9], 23);
    expect(() => smoothnessLoss(flow)).toThrow(
      'smoothnessLoss: flow of shape [1,3,1,5,9] needs N, C >= 1 and D, H, W >= 2 ' +
        '(an axis of extent 1 has no forward difference to average)',
    );
  });

  it('smoothness rank 4 input', () => {
    const [, flow] = hostAndDevice([3, 4, 5, 6], 23);
    expect(() => smoothnessLoss(flow)).toThrow(
      'smoothnessLoss: flow of shape [3,4,5,6] must be a [N, C, D, H, W] field (rank 5)',
    );
  });
});

describe('diceLoss', () => {
  const shape = [2, 3, 5, 6, 7];
  const voxels = 5 * 6 * 7;
  const probs = softmaxValues(shape, 31);
  const target = oneHotRef(ndarrayOf(randomLabels(2 * voxels, 3, 32), [2, 1, 5, 6, 7]), 3).data;

  for (const excludeBackground of [false, true]) {
    const name = excludeBackground ? 'without background' : 'with background';
    it(`dice forward ${name}`, async () => {
      const loss = diceLoss(tensor(Float32Array.from(probs), shape), tensor(Float32Array.from(target), shape), {
        excludeBackground,
      });
      const ref = diceLossRef(ndarrayOf(probs, shape), ndarrayOf(target, shape), { excludeBackground });
      // Sums of 210 values per class: 1e-5 relative.
      expectClose([await loss.item()], ref.data, 1e-5, 1e-6);
    });

    it(`dice gradients ${name}`, async () => {
      const small = [2, 3, 3, 4, 2];
      const result = await gradCheck(
        (p, t) => diceLoss(p, t, { excludeBackground }),
        (p: NDArray, t: NDArray) => diceLossRef(p, t, { excludeBackground }),
        [
          { shape: small, data: softmaxValues(small, 33) },
          { shape: small, data: softmaxValues(small, 34) },
        ],
        { rtol: 1e-3, atol: 1e-6 },
      );
      expect(result.ok, result.report).toBe(true);
    });
  }

  it('dice forward aligned rows', async () => {
    // D * H * W % 4 == 0 takes the vec4 variant; 180 quads span 12 chunks.
    const aligned = [1, 3, 8, 9, 10];
    const p = softmaxValues(aligned, 37);
    const t = softmaxValues(aligned, 38);
    const loss = diceLoss(tensor(Float32Array.from(p), aligned), tensor(Float32Array.from(t), aligned));
    const ref = diceLossRef(ndarrayOf(p, aligned), ndarrayOf(t, aligned));
    expectClose([await loss.item()], ref.data, 1e-5, 1e-6);
  });

  for (const [name, oneShape] of [
    ['odd rows', [2, 3, 5, 6, 7]],
    ['aligned rows', [1, 3, 4, 5, 6]],
  ] as const) {
    it(`dice one-sided gradients ${name}`, async () => {
      // A gradient of one input alone (the other detached) must give the
      // bits of the same gradient when both inputs take one.
      const p = softmaxValues([...oneShape], 41);
      const t = softmaxValues([...oneShape], 42);
      const bothProbs = tensor(Float32Array.from(p), [...oneShape], { requiresGrad: true });
      const bothTarget = tensor(Float32Array.from(t), [...oneShape], { requiresGrad: true });
      const [, [gradP, gradT]] = await lossAndGrads(diceLoss(bothProbs, bothTarget), [bothProbs, bothTarget]);
      const probsOnly = tensor(Float32Array.from(p), [...oneShape], { requiresGrad: true });
      const fixedTarget = tensor(Float32Array.from(t), [...oneShape]);
      const [, [onlyP]] = await lossAndGrads(diceLoss(probsOnly, fixedTarget), [probsOnly]);
      const fixedProbs = tensor(Float32Array.from(p), [...oneShape]);
      const targetOnly = tensor(Float32Array.from(t), [...oneShape], { requiresGrad: true });
      const [, [onlyT]] = await lossAndGrads(diceLoss(fixedProbs, targetOnly), [targetOnly]);
      expect(sameBits(onlyP, gradP), 'gradient of probs alone').toBe(true);
      expect(sameBits(onlyT, gradT), 'gradient of target alone').toBe(true);
      expect(fixedTarget.grad, 'no gradient for a detached target').toBeNull();
      expect(fixedProbs.grad, 'no gradient for detached probs').toBeNull();
    });
  }

  it('dice class empty in both inputs is finite', async () => {
    // Class 2 of sample 0 has no probability and no target voxel.
    const p = probs.slice();
    const t = target.slice();
    for (let v = 0; v < voxels; v++) {
      p[2 * voxels + v] = 0;
      t[voxels + v] += t[2 * voxels + v];
      t[2 * voxels + v] = 0;
    }
    const pt = tensor(Float32Array.from(p), shape, { requiresGrad: true });
    const tt = tensor(Float32Array.from(t), shape, { requiresGrad: true });
    const [value, grads] = await lossAndGrads(diceLoss(pt, tt), [pt, tt]);
    expect(Number.isFinite(value), `loss ${value}`).toBe(true);
    expect(allFinite(grads[0]), 'gradient of probs').toBe(true);
    expect(allFinite(grads[1]), 'gradient of target').toBe(true);
    // The empty class has Dice 1, as in the reference.
    expectClose([value], diceLossRef(ndarrayOf(p, shape), ndarrayOf(t, shape)).data, 1e-5, 1e-6);
  });

  for (const c of FIXTURES.dice) {
    it(`dice torch ${c.name}`, async () => {
      const p = leaf(c.probs);
      const t = leaf(c.target);
      const loss = diceLoss(p, t, { excludeBackground: c.exclude_background });
      const [value, [gradP, gradT]] = await lossAndGrads(loss, [p, t]);
      expectClose([value], [c.loss], 1e-4, 0, 'loss');
      expectClose(gradP, c.grad_probs, 1e-4, 0, 'gradient of probs');
      expectClose(gradT, c.grad_target, 1e-4, 0, 'gradient of target');
    });
  }

  it('dice repeats bit for bit', async () => {
    const big = [1, 4, 23, 30, 31];
    const runs: Float32Array[][] = [];
    for (let run = 0; run < 2; run++) {
      const p = tensor(Float32Array.from(softmaxValues(big, 35)), big, { requiresGrad: true });
      const t = tensor(Float32Array.from(softmaxValues(big, 36)), big, { requiresGrad: true });
      const loss = diceLoss(p, t);
      const value = await loss.toArray();
      backward(loss);
      runs.push([value, await p.grad!.toArray(), await t.grad!.toArray()]);
    }
    runs[0].forEach((values, i) => expect(sameBits(values, runs[1][i]), `output ${i}`).toBe(true));
  });

  it('dice in row groups', async () => {
    // Rows of 210 voxels (840 bytes) under a 2000-byte binding limit: groups
    // of 2 rows, the path of tensors larger than one storage binding.
    const run = async (): Promise<Float32Array[]> => {
      const p = tensor(Float32Array.from(probs), shape, { requiresGrad: true });
      const t = tensor(Float32Array.from(target), shape, { requiresGrad: true });
      const loss = diceLoss(p, t, { excludeBackground: true });
      const value = await loss.toArray();
      backward(loss);
      return [value, await p.grad!.toArray(), await t.grad!.toArray()];
    };
    const whole = await run();
    rowGroupOptions.maxBindingBytes = 2000;
    let grouped: Float32Array[];
    try {
      grouped = await run();
    } finally {
      rowGroupOptions.maxBindingBytes = 0;
    }
    whole.forEach((values, i) => expect(sameBits(values, grouped[i]), `output ${i}`).toBe(true));
  });

  it('dice shape mismatch', () => {
    const [, p] = hostAndDevice([1, 3, 4, 5, 6], 1);
    const [, t] = hostAndDevice([1, 2, 4, 5, 6], 2);
    expect(() => diceLoss(p, t)).toThrow(
      'diceLoss: probs [1,3,4,5,6] and target [1,2,4,5,6] must have the same [N, K, D, H, W] shape',
    );
  });

  it('dice single class without background', () => {
    const [, p] = hostAndDevice([1, 1, 4, 5, 6], 1);
    expect(() => diceLoss(p, p, { excludeBackground: true })).toThrow(
      'diceLoss: probs [1,1,4,5,6] has no class to average (need N >= 1, voxels >= 1 ' +
        'and K >= 2 with excludeBackground)',
    );
  });

  it('dice epsilon zero', () => {
    const [, p] = hostAndDevice([1, 2, 4, 5, 6], 1);
    expect(() => diceLoss(p, p, { epsilon: 0 })).toThrow(
      'diceLoss: epsilon 0 must be a positive finite number',
    );
  });
});

describe('oneHot', () => {
  const spatial = [3, 4, 5];
  const labels = randomLabels(2 * 60, 4, 41);

  for (const [name, data] of [
    ['Uint8Array', labels],
    ['Int32Array', Int32Array.from(labels)],
    ['Float32Array', Float32Array.from(labels)],
  ] as const) {
    it(`one-hot host ${name}`, async () => {
      const out = oneHot({ data, shape: [2, 1, ...spatial] }, 4);
      expect(out.shape).toEqual([2, 4, ...spatial]);
      const ref = oneHotRef(ndarrayOf(labels, [2, 1, ...spatial]), 4);
      expect(Array.from(await out.toArray())).toEqual(Array.from(ref.data));
    });
  }

  it('one-hot device tensor without channel axis', async () => {
    const out = oneHot(tensor(Float32Array.from(labels), [2, ...spatial]), 4);
    expect(out.shape).toEqual([2, 4, ...spatial]);
    const ref = oneHotRef(ndarrayOf(labels, [2, 1, ...spatial]), 4);
    expect(Array.from(await out.toArray())).toEqual(Array.from(ref.data));
  });

  it('one-hot host label out of range', () => {
    const data = Uint8Array.from(labels);
    data[17] = 4;
    expect(() => oneHot({ data, shape: [2, 1, ...spatial] }, 4)).toThrow(
      'oneHot: label 4 at index 17 of labels [2,1,3,4,5] is not a class id in [0, 4); ' +
        'relabel the map to 0..3 or raise numClasses',
    );
  });

  it('one-hot host label not an integer', () => {
    const data = Float32Array.from(labels);
    data[3] = 1.5;
    expect(() => oneHot({ data, shape: [2, ...spatial] }, 4)).toThrow(
      'oneHot: label 1.5 at index 3 of labels [2,3,4,5] is not a class id in [0, 4)',
    );
  });

  it('one-hot device label out of range throws at sync', async () => {
    const data = Float32Array.from(labels);
    data[67] = -1;
    const out = oneHot(tensor(data, [2, 1, ...spatial]), 4);
    await expect(out.toArray()).rejects.toThrow(
      'oneHot: label -1 at index 67 of labels [2,1,3,4,5] is not a class id in [0, 4) ' +
        '(found by the device check at sync); relabel the map to 0..3 or raise numClasses',
    );
    // The check is spent: the next readback succeeds, with zeros at the bad voxel.
    const values = await out.toArray();
    for (let k = 0; k < 4; k++) expect(values[(4 + k) * 60 + 7], `class ${k}`).toBe(0);
  });

  it('one-hot device NaN label throws at sync', async () => {
    const data = Float32Array.from(labels);
    data[5] = Number.NaN;
    data[9] = 2.5;
    const out = oneHot(tensor(data, [2, ...spatial]), 4);
    await expect(out.toArray()).rejects.toThrow('oneHot: label NaN at index 5 of labels [2,3,4,5]');
  });

  it('one-hot in row groups', async () => {
    // Rows of 60 voxels (240 bytes) under a 500-byte binding limit.
    const data = Float32Array.from(labels);
    const whole = await oneHot(tensor(data, [2, 1, ...spatial]), 4).toArray();
    // With 5 classes, the group of rows 4 and 5 spans both samples.
    const wholeFive = await oneHot(tensor(data, [2, 1, ...spatial]), 5).toArray();
    data[75] = 9;
    rowGroupOptions.maxBindingBytes = 500;
    try {
      const out = oneHot(tensor(Float32Array.from(labels), [2, 1, ...spatial]), 4);
      expect(Array.from(await out.toArray())).toEqual(Array.from(whole));
      const five = oneHot(tensor(Float32Array.from(labels), [2, 1, ...spatial]), 5);
      expect(Array.from(await five.toArray())).toEqual(Array.from(wholeFive));
      // The label check covers every voxel when the rows are split.
      const bad = oneHot(tensor(data, [2, 1, ...spatial]), 4);
      await expect(bad.toArray()).rejects.toThrow('oneHot: label 9 at index 75 of labels');
    } finally {
      rowGroupOptions.maxBindingBytes = 0;
    }
  });

  it('one-hot row larger than a binding', () => {
    rowGroupOptions.maxBindingBytes = 200;
    try {
      expect(() => oneHot({ data: labels, shape: [2, 1, ...spatial] }, 4)).toThrow(
        'oneHot: one row of 240 bytes of [2,4,3,4,5] exceeds the largest storage binding ' +
          'of 200 bytes; use a smaller volume',
      );
    } finally {
      rowGroupOptions.maxBindingBytes = 0;
    }
  });

  it('one-hot bad shape', () => {
    expect(() => oneHot({ data: labels, shape: [2, 2, 3, 4, 5] }, 4)).toThrow(
      'oneHot: labels of shape [2,2,3,4,5] must be [N, 1, D, H, W] or [N, D, H, W]',
    );
  });
});

describe('diceScore', () => {
  it('dice score per label', () => {
    //                 voxel: 0  1  2  3  4  5  6  7
    const predicted = Uint8Array.of(0, 1, 1, 2, 2, 0, 0, 5);
    const truth = Int32Array.of(0, 1, 2, 2, 2, 3, 0, 0);
    const { perLabel, mean } = diceScore(predicted, truth, [1, 2, 3, 4, 5]);
    expect(perLabel.get(1)).toBe((2 * 1) / (2 + 1));
    expect(perLabel.get(2)).toBe((2 * 2) / (2 + 3));
    // In the truth, never predicted.
    expect(perLabel.get(3)).toBe(0);
    // In neither map: absent, not 0 or 1.
    expect(perLabel.get(4)).toBeNull();
    // Predicted, not in the truth.
    expect(perLabel.get(5)).toBe(0);
    expect([...perLabel.keys()]).toEqual([1, 2, 3, 4, 5]);
    expect(mean).toBeCloseTo((2 / 3 + 4 / 5 + 0 + 0) / 4, 15);
  });

  it('dice score float labels', () => {
    const a = Float32Array.of(1, 1, 0, 7);
    const b = Float32Array.of(1, 0, 0, 7);
    const { perLabel, mean } = diceScore(a, b, [0, 1, 7]);
    expect(perLabel.get(0)).toBe(2 / 3);
    expect(perLabel.get(1)).toBe(2 / 3);
    expect(perLabel.get(7)).toBe(1);
    expect(mean).toBeCloseTo((2 / 3 + 2 / 3 + 1) / 3, 15);
  });

  it('dice score no label present', () => {
    const { perLabel, mean } = diceScore(Uint8Array.of(0, 0), Uint8Array.of(0, 0), [1, 2]);
    expect(perLabel.get(1)).toBeNull();
    expect(perLabel.get(2)).toBeNull();
    expect(mean).toBeNull();
  });

  it('dice score length mismatch', () => {
    expect(() => diceScore(Uint8Array.of(0, 1), Uint8Array.of(0), [1])).toThrow(
      'diceScore: labelsA has 2 voxels but labelsB has 1; both maps must cover the same grid',
    );
  });

  it('dice score repeated label id', () => {
    expect(() => diceScore(Uint8Array.of(0), Uint8Array.of(0), [1, 1])).toThrow(
      'diceScore: label id 1 is listed twice in labelIds',
    );
  });
});

describe('losses without gradients', () => {
  it('loss under noGrad records nothing', async () => {
    const [ah, a] = hostAndDevice([1, 1, 5, 4, 6], 51);
    const [bh, b] = hostAndDevice([1, 1, 5, 4, 6], 52);
    a.requiresGrad = true;
    const loss = noGrad(() => nccLoss(a, b, { window: 3 }));
    expect(loss.requiresGrad).toBe(false);
    expectClose([await loss.item()], nccRef(ah, bh, [3, 3, 3]).data, 1e-5, 1e-6);
  });
});
