import { beforeAll, describe, expect, it } from 'vitest';
import { RrlMedSam } from '../src/nn/rrl/index.js';
import { makePhantom } from '../src/pipeline/phantom.js';
import { predict, disposePrediction, volumeTensor } from '../src/pipeline/experiment.js';
import { refineOptionsOf, refineRegistration } from '../src/pipeline/refine.js';
import { liveTensorCount, tensor, type Tensor } from '../src/tensor.js';
import { device } from './helpers.js';

beforeAll(device);

const SIZE = 32;

/** Returns a phantom's intensities scaled to 0-1 as a [1, 1, D, H, W] tensor. */
function phantomTensor(seed: number): Tensor {
  const image = makePhantom({ size: SIZE, seed, noise: false }).image;
  const peak = image.data.reduce((a, b) => Math.max(a, b), 0);
  return volumeTensor({ ...image, data: Float32Array.from(image.data, (v) => v / peak) });
}

async function weights(model: RrlMedSam): Promise<Float32Array[]> {
  return Promise.all(model.parameters().map((t) => t.toArray()));
}

describe('refineRegistration', () => {
  it('with 0 steps returns the field predict gives', async () => {
    const model = new RrlMedSam({ preset: 'tiny', numClasses: 2 });
    const atlas = phantomTensor(1);
    const target = phantomTensor(2);
    const prediction = predict(model, atlas, target);
    const result = await refineRegistration(model, atlas, target, { steps: 0 });
    expect(await result.flow.toArray()).toEqual(await prediction.flow.toArray());
    expect(result.lossAfter).toBe(result.lossBefore);
    disposePrediction(prediction);
    [result.flow, atlas, target].forEach((t) => t.dispose());
    model.dispose();
  });

  it('network mode restores the weights', async () => {
    const model = new RrlMedSam({ preset: 'tiny', numClasses: 2 });
    const atlas = phantomTensor(1);
    const target = phantomTensor(2);
    const before = await weights(model);
    const seen: number[] = [];
    const result = await refineRegistration(model, atlas, target, {
      steps: 8,
      mode: 'network',
      lr: 1e-2,
      nccWindow: 5,
      onStep: (done) => seen.push(done),
    });
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(Number.isFinite(result.lossBefore)).toBe(true);
    // Eight steps at lr 1e-2 move the tiny network's NCC well past noise.
    expect(result.lossAfter).toBeLessThan(result.lossBefore - 0.01);
    const after = await weights(model);
    after.forEach((values, index) => expect(values).toEqual(before[index]));
    expect(model.parameters().every((t) => t.grad === null)).toBe(true);
    // The refined field differs from the network's own.
    const own = predict(model, atlas, target);
    const refined = await result.flow.toArray();
    const plain = await own.flow.toArray();
    expect(refined.some((value, index) => value !== plain[index])).toBe(true);
    disposePrediction(own);
    [result.flow, atlas, target].forEach((t) => t.dispose());
    model.dispose();
  });

  it('field mode is deterministic and keeps weights', async () => {
    const model = new RrlMedSam({ preset: 'tiny', numClasses: 2 });
    const atlas = phantomTensor(1);
    const target = phantomTensor(2);
    const before = await weights(model);
    const own = predict(model, atlas, target);
    const plain = await own.flow.toArray();
    disposePrediction(own);
    const live = liveTensorCount();
    const first = await refineRegistration(model, atlas, target, { steps: 8, nccWindow: 5 });
    // The refined field is the one tensor left behind.
    expect(liveTensorCount()).toBe(live + 1);
    expect(first.flow.requiresGrad).toBe(false);
    expect(first.flow.grad).toBeNull();
    // Eight steps at the default rate of 0.1 voxels lower l1 L_smooth +
    // l2 L_sim of the phantom pair by far more than rounding.
    expect(first.lossAfter).toBeLessThan(first.lossBefore - 0.01);
    const refined = await first.flow.toArray();
    const moved = refined.reduce((largest, value, index) => Math.max(largest, Math.abs(value - plain[index])), 0);
    expect(moved).toBeGreaterThan(0.05);
    // Adam moves a value by at most lr (1 - beta1) / sqrt(1 - beta2) per step.
    expect(moved).toBeLessThanOrEqual(8 * 0.1 * (0.1 / Math.sqrt(0.001)));
    const after = await weights(model);
    after.forEach((values, index) => expect(values).toEqual(before[index]));
    expect(model.parameters().every((t) => t.grad === null)).toBe(true);
    const second = await refineRegistration(model, atlas, target, { steps: 8, nccWindow: 5 });
    expect(await second.flow.toArray()).toEqual(refined);
    expect(second.lossAfter).toBe(first.lossAfter);
    [first.flow, second.flow, atlas, target].forEach((t) => t.dispose());
    model.dispose();
  });

  it('rejects a step count that is not a whole number', async () => {
    const model = new RrlMedSam({ preset: 'tiny', numClasses: 2 });
    const atlas = tensor(new Float32Array(SIZE ** 3), [1, 1, SIZE, SIZE, SIZE]);
    await expect(refineRegistration(model, atlas, atlas, { steps: 2.5 })).rejects.toThrow(
      /refineRegistration: steps 2.5 must be a whole number/,
    );
    await expect(refineRegistration(model, atlas, atlas, { steps: 3, lr: 0 })).rejects.toThrow(/lr 0 must be above 0/);
    await expect(refineRegistration(model, atlas, atlas, { steps: 3, mode: 'weights' as never })).rejects.toThrow(
      `refineRegistration: mode "weights" must be 'field' or 'network'`,
    );
    await expect(refineRegistration(model, atlas, atlas, { steps: 3, smoothness: NaN })).rejects.toThrow(
      'refineRegistration: smoothness NaN must be a finite weight of 0 or more',
    );
    for (const nccWindow of [8, 0, NaN, 33]) {
      await expect(refineRegistration(model, atlas, atlas, { steps: 3, nccWindow })).rejects.toThrow(
        `refineRegistration: nccWindow ${nccWindow} must be an odd whole number from 1 to 32`,
      );
    }
    atlas.dispose();
    model.dispose();
  });
});

describe('refineRegistration on a loss that is not finite', () => {
  it('rejects it and leaves no tensor', async () => {
    const model = new RrlMedSam({ preset: 'tiny', numClasses: 2 });
    const atlas = phantomTensor(1);
    const target = phantomTensor(2);
    const live = liveTensorCount();
    // l2 = 1e39 is finite in JavaScript but overflows float32 on the device.
    await expect(refineRegistration(model, atlas, target, { steps: 2, similarity: 1e39 })).rejects.toThrow(
      "refineRegistration: the image loss of the network's own field is -Infinity with weights l1 1 and l2 1e+39",
    );
    expect(liveTensorCount()).toBe(live);
    const failing = () => {
      throw new Error('progress display failed');
    };
    await expect(refineRegistration(model, atlas, target, { steps: 1, nccWindow: 5, onDone: failing })).rejects.toThrow(
      'progress display failed',
    );
    expect(liveTensorCount()).toBe(live);
    [atlas, target].forEach((t) => t.dispose());
    model.dispose();
  });
});

describe('refineOptionsOf', () => {
  it('takes the weights and window of model.json', () => {
    expect(refineOptionsOf({ weights: { smoothness: 0.5, similarity: 2 }, nccWindow: 7 }, 30)).toEqual({
      steps: 30,
      smoothness: 0.5,
      similarity: 2,
      nccWindow: 7,
    });
  });

  it('names the broken model.json fields', () => {
    const broken = { weights: { smoothness: 1, similarity: null as unknown as number }, nccWindow: 4 };
    expect(() => refineOptionsOf(broken, 3)).toThrow(
      'refine: model.json has training.weights.similarity null, training.nccWindow 4; refinement needs',
    );
    expect(() => refineOptionsOf({} as never, 3)).toThrow(/training.weights.smoothness undefined/);
    const wide = { weights: { smoothness: 1, similarity: 1 }, nccWindow: 99 };
    expect(() => refineOptionsOf(wide, 3, 64)).toThrow(
      "refine: model.json has training.nccWindow 99; refinement needs the weights l1 and l2 as numbers of 0 or more " +
        "and an odd NCC window of at most the grid's 64, as train writes them",
    );
    expect(refineOptionsOf(wide, 3).nccWindow).toBe(99);
  });
});
