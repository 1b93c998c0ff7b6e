import { beforeAll, describe, expect, it } from 'vitest';
import {
  SGD,
  add,
  backward,
  diceLoss,
  nccLoss,
  oneHot,
  scale,
  smoothnessLoss,
  softmax,
  gradCheck,
  concat,
  full,
  liveTensorCount,
  memoryStats,
  mul,
  randn,
  sub,
  sum,
  tensor,
  tidy,
  warp,
  zeros,
  type Tensor,
} from '../src/index.js';
import { Module } from '../src/nn/module.js';
import { RrlMedSam } from '../src/nn/rrl/index.js';
import { diceScore } from '../src/ops/dice-score.js';
import { makePhantom } from '../src/pipeline/phantom.js';
import {
  VARIANTS,
  createTrainer,
  crossEntropy,
  registrationLosses,
  segmentationLoss,
  warpAtlas,
  disposeTrainerState,
  mutualEmaIteration,
  pairParameters,
  scanIndexAt,
  variantModelOptions,
  type TrainerOptions,
  type TrainerState,
  type TrainingData,
  type TrainingVariant,
} from '../src/pipeline/train/index.js';
import type { NDArray } from '../src/reference/ndarray.js';
import { device, expectClose } from './helpers.js';

beforeAll(device);

const K = 3; // structures; numClasses is K + 1.

interface PhantomTensors {
  image: Tensor;
  labels: Tensor;
  labelData: Float32Array;
}

function phantom(size: [number, number, number], seed: number): PhantomTensors {
  const p = makePhantom({ size, seed, structures: K });
  const shape = [1, 1, ...size];
  // White matter is near 1000: scale intensities to about [0, 1].
  const image = tensor(p.image.data.map((v) => v / 1000), shape);
  return { image, labels: tensor(p.labels.data, shape), labelData: p.labels.data };
}

/** Builds an atlas, scans and random teacher features per scan. */
function world(size: [number, number, number], scanSeeds: number[]) {
  const atlas = phantom(size, 1);
  const scans = scanSeeds.map((seed) => phantom(size, seed));
  const teachers = scans.map((_, i) => randn([256, size[0], 2, 2], 100 + i));
  const data: TrainingData = {
    atlas: { image: atlas.image, labels: atlas.labels },
    scans: scans.map((s) => s.image),
    teacher: (index) => teachers[index],
  };
  const dispose = () => {
    for (const t of [atlas.image, atlas.labels, ...teachers]) t.dispose();
    for (const s of scans) [s.image, s.labels].forEach((t) => t.dispose());
  };
  return { atlas, scans, teachers, data, dispose };
}

function tinyModel(variant: TrainingVariant, seed = 0): RrlMedSam {
  return new RrlMedSam({
    preset: 'tiny',
    numClasses: K + 1,
    seed,
    ...variantModelOptions(variant),
  });
}

async function parameterValues(module: Module): Promise<Map<string, Float32Array>> {
  const values = new Map<string, Float32Array>();
  for (const [name, t] of module.namedParameters()) values.set(name, await t.toArray());
  return values;
}

/** Asserts two weight maps are bitwise equal, naming the first mismatch. */
function expectBitwiseEqual(
  a: Map<string, Float32Array>,
  b: Map<string, Float32Array>,
): void {
  expect([...a.keys()]).toEqual([...b.keys()]);
  for (const [name, values] of a) {
    const left = new Uint32Array(values.buffer);
    const right = new Uint32Array(b.get(name)!.buffer);
    const index = left.findIndex((bits, i) => bits !== right[i]);
    expect(index, `${name} differs at element ${index}`).toBe(-1);
  }
}

describe('mutual ema', () => {
  // Two scalar "encoders" of two parameters each, trained by SGD (lr 0.1)
  // on fake losses: medical sum((theta - 1)^2), general sum((theta - 10)^2),
  // so every gradient is 2 (theta - centre).
  function scalars() {
    const medical = [tensor([2], [1], { requiresGrad: true }), tensor([4], [1], { requiresGrad: true })];
    const general = [tensor([5], [1], { requiresGrad: true }), tensor([-1], [1], { requiresGrad: true })];
    const step = (params: Tensor[], centre: number) => {
      const optimizer = new SGD(params, { lr: 0.1 });
      const loss = tidy(() =>
        params.map((p) => sum(mul(sub(p, centre), sub(p, centre)))).reduce((a, b) => a.add(b)),
      );
      backward(loss);
      loss.dispose();
      optimizer.step();
      optimizer.zeroGrad();
    };
    return { medical, general, step };
  }

  /** Runs the same iteration in float64 on the host. */
  function expected(
    medical: number[],
    general: number[],
    alpha: number,
    emaToGeneral: boolean,
    emaToMedical: boolean,
  ) {
    const sgd = (theta: number, centre: number) => theta - 0.1 * 2 * (theta - centre);
    let med = medical.map((t) => sgd(t, 1));
    let gen = general;
    if (emaToGeneral) gen = gen.map((t, i) => alpha * t + (1 - alpha) * med[i]);
    const generalSeen = [...gen];
    gen = gen.map((t) => sgd(t, 10));
    if (emaToMedical) med = med.map((t, i) => alpha * t + (1 - alpha) * gen[i]);
    return { medical: med, general: gen, generalSeen };
  }

  const cases: [string, boolean, boolean][] = [
    ['full', true, true],
    ['st', true, false],
    ['ts', false, true],
    ['baseline', false, false],
  ];
  for (const [name, emaToGeneral, emaToMedical] of cases) {
    it(`order and arithmetic (${name})`, async () => {
      const { medical, general, step } = scalars();
      // The general step's gradient depends on theta_lie when it runs, so
      // the values below also pin the order of steps 2 and 3.
      const events = mutualEmaIteration(
        {
          medicalStep: () => step(medical, 1),
          generalStep: () => step(general, 10),
          medicalEncoder: medical,
          generalEncoder: general,
        },
        { alpha: 0.9, emaToGeneral, emaToMedical },
      );
      const order = ['medical-step'];
      if (emaToGeneral) order.push('ema-to-general');
      order.push('general-step');
      if (emaToMedical) order.push('ema-to-medical');
      expect(events).toEqual(order);
      const want = expected([2, 4], [5, -1], 0.9, emaToGeneral, emaToMedical);
      const gotMedical = [await medical[0].item(), await medical[1].item()];
      const gotGeneral = [await general[0].item(), await general[1].item()];
      expectClose(gotMedical, want.medical, 1e-6, 1e-6, 'theta_med');
      expectClose(gotGeneral, want.general, 1e-6, 1e-6, 'theta_lie');
      for (const t of [...medical, ...general]) t.dispose();
    });
  }

  it('hand values of the full iteration', () => {
    // theta_med 2 -> 1.8 (SGD); theta_lie 0.9 * 5 + 0.1 * 1.8 = 4.68;
    // 4.68 -> 4.68 - 0.2 * (4.68 - 10) = 5.744; theta_med
    // 0.9 * 1.8 + 0.1 * 5.744 = 2.1944.
    const want = expected([2], [5], 0.9, true, true);
    expectClose(want.medical, [2.1944], 1e-12, 1e-12, 'theta_med');
    expectClose(want.general, [5.744], 1e-12, 1e-12, 'theta_lie');
    expectClose(want.generalSeen, [4.68], 1e-12, 1e-12, 'general step input');
  });

  it('pairs encoder parameters by name', () => {
    const a = tinyModel('full');
    const { first, second } = pairParameters(a.generalEncoder, a.medicalEncoder);
    expect(first.length).toBe(second.length);
    expect(first.length).toBe(a.generalEncoder.parameters().length);
    expect(() => pairParameters(a.generalEncoder, a.generalDecoder)).toThrow(
      /^pairParameters: the encoders differ: /,
    );
    a.dispose();
  });
});

describe('trainer variants', () => {
  const size: [number, number, number] = [16, 16, 32];

  for (const variant of Object.keys(VARIANTS) as TrainingVariant[]) {
    it(`${variant} runs its steps`, async () => {
      const { data, dispose } = world(size, [2]);
      const model = tinyModel(variant);
      // With lr 0 the optimiser steps change nothing, so after stage 2
      // the encoders must be exactly the EMA mix of their old values.
      const trainer = createTrainer(model, data, {
        variant,
        stage1Iterations: 1,
        stage2Iterations: 1,
        lr: 0,
        alpha: 0.9,
      });
      const switches = VARIANTS[variant];
      const first = await trainer.step();
      expect(first.stage).toBe(1);
      expect(first.events).toEqual([]);
      expect(first.losses!.distillation !== undefined).toBe(switches.distill);
      expect(Number.isFinite(first.losses!.total)).toBe(true);

      const medicalBefore = await parameterValues(model.medicalEncoder);
      const generalBefore = await parameterValues(model.generalEncoder);
      const decoderBefore = await parameterValues(model.registrationDecoder);
      const second = await trainer.step();
      expect(second.stage).toBe(2);
      const order = ['medical-step'];
      if (switches.emaToGeneral) order.push('ema-to-general');
      order.push('general-step');
      if (switches.emaToMedical) order.push('ema-to-medical');
      expect(second.events).toEqual(order);
      expect(second.losses!.distillation).toBeUndefined();
      expect(Number.isFinite(second.losses!.medical)).toBe(true);
      expect(Number.isFinite(second.losses!.general)).toBe(true);

      const medicalAfter = await parameterValues(model.medicalEncoder);
      const generalAfter = await parameterValues(model.generalEncoder);
      for (const [name, before] of medicalBefore) {
        const other = generalBefore.get(name)!;
        const lie = switches.emaToGeneral
          ? before.map((v, i) => 0.9 * other[i] + 0.1 * v)
          : other;
        const med = switches.emaToMedical
          ? before.map((v, i) => 0.9 * v + 0.1 * lie[i])
          : before;
        expectClose(generalAfter.get(name)!, lie, 1e-6, 1e-7, `general ${name}`);
        expectClose(medicalAfter.get(name)!, med, 1e-6, 1e-7, `medical ${name}`);
      }
      expectBitwiseEqual(await parameterValues(model.registrationDecoder), decoderBefore);
      expect(trainer.done).toBe(true);
      await expect(trainer.step()).rejects.toThrow(
        'Trainer.step: training is complete (2 of 2 iterations)',
      );
      trainer.dispose();
      model.dispose();
      dispose();
    });
  }

  it('rejects a model built for another variant', () => {
    const { data, dispose } = world(size, [2]);
    const model = tinyModel('full');
    expect(() => createTrainer(model, data, { variant: 'no-prompt' })).toThrow(
      "createTrainer: variant 'no-prompt' trains without the auto-prompt, but " +
        "the model was built with autoPrompt true; build it with " +
        "variantModelOptions('no-prompt')",
    );
    expect(() =>
      createTrainer(model, { ...data, teacher: undefined }, { variant: 'full' }),
    ).toThrow(
      "createTrainer: variant 'full' distils the teacher in stage 1 but " +
        "data.teacher is missing; pass teacher features or use the 'baseline' variant",
    );
    expect(() => createTrainer(model, data, { readLossesEvery: 0 })).toThrow(
      'createTrainer: readLossesEvery must be a positive integer, got 0',
    );
    model.dispose();
    dispose();
  });
});

describe('trainer runs', () => {
  it('registration improves on phantoms', async () => {
    // The target is the atlas phantom shifted by 2 voxels along H and W,
    // so the transform to learn is known and ten steps show progress.
    const size: [number, number, number] = [16, 32, 32];
    const atlas = phantom(size, 1);
    const shift = tidy(() =>
      concat([zeros([1, 1, ...size]), full([1, 2, ...size], 2)], 1),
    );
    const target = warp(atlas.image, shift);
    const targetLabels = await warp(atlas.labels, shift, { mode: 'nearest' }).toArray();
    const model = tinyModel('baseline');
    const iterations = 10;
    const data = { atlas: { image: atlas.image, labels: atlas.labels }, scans: [target] };
    const trainer = createTrainer(model, data, {
      variant: 'baseline',
      stage1Iterations: iterations,
      stage2Iterations: 0,
      lr: 1e-2,
    });
    const results = [];
    while (!trainer.done) results.push(await trainer.step());
    const first = results[0].losses!;
    const last = results[iterations - 1].losses!;
    expect(last.registration).toBeLessThan(first.registration!);
    expect(last.similarity).toBeLessThan(first.similarity!);
    expect(last.generalSegmentation).toBeLessThan(first.generalSegmentation!);

    // Hard Dice of the atlas labels against the target's labels, before
    // (identity transform, about 0.35) and after registration.
    const ids = Array.from({ length: K }, (_, i) => i + 1);
    const identity = diceScore(atlas.labelData, targetLabels, ids).mean!;
    const { flow } = model.register(atlas.image, target);
    const moved = await warp(atlas.labels, flow, { mode: 'nearest' }).toArray();
    const registered = diceScore(moved, targetLabels, ids).mean!;
    expect(registered).toBeGreaterThan(identity + 0.2);
    trainer.dispose();
    model.dispose();
    for (const t of [atlas.image, atlas.labels, shift, target, flow]) t.dispose();
  });

  it('memory stays flat over 20 steps', async () => {
    const before = liveTensorCount();
    const { data, dispose } = world([16, 16, 32], [2, 3]);
    const model = tinyModel('full');
    const trainer = createTrainer(model, data, {
      stage1Iterations: 10,
      stage2Iterations: 10,
      readLossesEvery: 3,
    });
    const snapshot = () => {
      const stats = memoryStats();
      return {
        liveTensors: liveTensorCount(),
        storageLiveBytes: stats.storage.liveBytes,
        storageLiveBuffers: stats.storage.liveBuffers,
        totalBytes: stats.totalBytes,
      };
    };
    const snapshots = new Map<number, ReturnType<typeof snapshot>>();
    let readBack = 0;
    while (!trainer.done) {
      const result = await trainer.step();
      if (result.losses) readBack += 1;
      snapshots.set(result.iteration, snapshot());
    }
    // Stage 1 from its 3rd step on, stage 2 from its 3rd (stage 2 starts
    // with new optimisers, whose moments appear at their first step).
    expect(snapshots.get(10)).toEqual(snapshots.get(3));
    expect(snapshots.get(20)).toEqual(snapshots.get(13));
    // Iterations 3, 6, ..., 18 and the last one read their losses.
    expect(readBack).toBe(7);
    trainer.dispose();
    model.dispose();
    dispose();
    expect(liveTensorCount()).toBe(before);
  });

  it('same seed gives bitwise equal weights and resumes', async () => {
    const size: [number, number, number] = [16, 16, 32];
    const { scans, teachers, atlas, dispose } = world(size, [2, 3]);
    const hostScans = await Promise.all(scans.map((s) => s.image.toArray()));
    const hostTeachers = await Promise.all(teachers.map((t) => t.toArray()));
    // Scans through a loader and teacher features as host arrays: the
    // trainer uploads and frees them every iteration.
    const data: TrainingData = {
      atlas: { image: atlas.image, labels: atlas.labels },
      scans: {
        count: 2,
        load: async (index) => ({ data: hostScans[index], shape: [1, 1, ...size] }),
      },
      teacher: (index) => ({ data: hostTeachers[index], shape: [256, size[0], 2, 2] }),
    };
    const options: TrainerOptions = { stage1Iterations: 2, stage2Iterations: 2, seed: 7 };
    const run = async (steps: number) => {
      const model = tinyModel('full', 3);
      const trainer = createTrainer(model, data, options);
      await trainer.run(steps);
      return { model, trainer };
    };

    const a = await run(3);
    const atThree = await parameterValues(a.model);
    await a.trainer.run();
    const final = await parameterValues(a.model);

    const b = await run(3);
    expectBitwiseEqual(await parameterValues(b.model), atThree);

    // Checkpoint b through host copies, as a file would, and resume in a
    // fresh model and trainer.
    const state = b.trainer.state();
    const copy = async (map: Map<string, Tensor>) => {
      const result = new Map<string, Tensor>();
      for (const [key, t] of map) result.set(key, tensor(await t.toArray(), t.shape));
      return result;
    };
    const saved: TrainerState = {
      ...state,
      model: await copy(state.model),
      medicalOptimizer: {
        ...state.medicalOptimizer,
        tensors: await copy(state.medicalOptimizer.tensors),
      },
      generalOptimizer: {
        ...state.generalOptimizer,
        tensors: await copy(state.generalOptimizer.tensors),
      },
    };
    disposeTrainerState(state);
    expect(saved.iteration).toBe(3);
    const c = { model: tinyModel('full', 99) };
    const resumed = createTrainer(c.model, data, options);
    resumed.loadState(saved);
    disposeTrainerState(saved);
    expect(resumed.iteration).toBe(3);
    expect(resumed.stage).toBe(2);
    await resumed.run();
    expectBitwiseEqual(await parameterValues(c.model), final);

    expect(() => resumed.loadState({ ...saved, variant: 'st' })).toThrow(
      "Trainer.loadState: the checkpoint is of variant 'st', this trainer runs 'full'",
    );
    for (const t of [a.trainer, b.trainer, resumed]) t.dispose();
    for (const m of [a.model, b.model, c.model]) m.dispose();
    dispose();
  });

  it('augment hook sees atlas and target', async () => {
    const { data, dispose } = world([16, 16, 32], [2]);
    const model = tinyModel('baseline');
    const calls: string[] = [];
    const draws: number[] = [];
    const trainer = createTrainer(
      model,
      { ...data, teacher: undefined },
      {
        variant: 'baseline',
        stage1Iterations: 1,
        stage2Iterations: 1,
        augment: (image, labels, iteration, context) => {
          calls.push(`${context.role} ${iteration} ${labels ? labels.shape[1] : '-'}`);
          draws.push(context.random.uniform());
          return { image: image.mul(1), labels };
        },
      },
    );
    await trainer.run();
    expect(calls).toEqual(['atlas 0 1', 'target 0 -', 'atlas 1 1', 'target 1 -']);
    // Each iteration's generator is seeded from (seed, iteration) alone.
    expect(draws[0]).not.toBe(draws[2]);
    trainer.dispose();
    model.dispose();
    dispose();
  });

  it('scan order covers each epoch', () => {
    for (const shuffle of [true, false]) {
      const epoch = Array.from({ length: 5 }, (_, i) => scanIndexAt(3, 5 + i, 5, shuffle));
      expect([...epoch].sort()).toEqual([0, 1, 2, 3, 4]);
    }
    const first = Array.from({ length: 5 }, (_, i) => scanIndexAt(3, i, 5, true));
    const again = Array.from({ length: 5 }, (_, i) => scanIndexAt(3, i, 5, true));
    expect(first).toEqual(again);
  });
});

describe('segmentation cross-entropy', () => {
  const shape = [1, 3, 2, 3, 2];
  const voxels = 12;
  // Probabilities that sum to 1 over the 3 classes of each voxel, with
  // some below the 1e-6 floor; the target is soft.
  const probs = Array.from({ length: 3 * voxels }, (_, i) => {
    const v = i % voxels;
    const k = Math.floor(i / voxels);
    const raw = [0.2 + 0.05 * (v % 4), 0.3, v === 5 ? 0 : 0.5 - 0.05 * (v % 4)];
    const total = raw.reduce((a, b) => a + b, 0);
    return raw[k] / total;
  });
  const target = Array.from({ length: 3 * voxels }, (_, i) => {
    const v = i % voxels;
    const k = Math.floor(i / voxels);
    return [0.6, 0.3, 0.1][(k + v) % 3];
  });

  function crossEntropyRef(p: NDArray, t: NDArray): NDArray {
    let total = 0;
    for (let i = 0; i < p.data.length; i++) {
      total += t.data[i] * Math.log(Math.max(p.data[i], 1e-6));
    }
    return { shape: [], data: Float64Array.of(-total / voxels) };
  }

  it('cross-entropy matches the host sum', async () => {
    const loss = crossEntropy(tensor(probs, shape), tensor(target, shape));
    const ref = crossEntropyRef(
      { shape, data: Float64Array.from(probs) },
      { shape, data: Float64Array.from(target) },
    );
    expectClose([await loss.item()], ref.data, 1e-5, 1e-6);
  });

  it('cross-entropy gradients', async () => {
    const positive = probs.map((p) => 0.05 + p);
    const result = await gradCheck(crossEntropy, crossEntropyRef, [
      { shape, data: positive },
      { shape, data: target },
    ]);
    expect(result.ok, result.report).toBe(true);
  });

  it('segmentation loss adds the weighted term', async () => {
    const p = tensor(probs, shape);
    const t = tensor(target, shape);
    const options = { diceExcludeBackground: false };
    const dice = await segmentationLoss(p, t, options).item();
    const weighted = await segmentationLoss(p, t, {
      ...options,
      weights: { segmentationCrossEntropy: 0.5 },
    }).item();
    const ce = await crossEntropy(p, t).item();
    expectClose([weighted], [dice + 0.5 * ce], 1e-5, 1e-6);
  });
});

describe('registration loss at l3 = 0', () => {
  // 7x6x5 volumes, 3 classes, a flow of a few voxels.
  const shape = [1, 1, 7, 6, 5];
  const voxels = 7 * 6 * 5;
  const labels = Array.from({ length: voxels }, (_, i) => (i * 7) % 3);

  it('skipped label warp keeps gradients bitwise', async () => {
    const weights = { smoothness: 1, similarity: 1, registrationDice: 0 };
    const options = {
      weights: { ...weights, medicalSegmentation: 1, generalSegmentation: 1, distillation: 1, segmentationCrossEntropy: 0 },
      nccWindow: 3,
      diceExcludeBackground: false,
      detachSegmentationInRegistration: true,
    };
    const gradients: Float32Array[] = [];
    const dices: number[] = [];
    for (const labelGradient of [false, true]) {
      const atlas = randn(shape, 1);
      const target = randn(shape, 2);
      const oneHotLabels = oneHot(tensor(labels, shape), 3);
      const probs = softmax(randn([1, 3, 7, 6, 5], 3), 1);
      const flow = scale(randn([1, 3, 7, 6, 5], 4), 1.5);
      flow.requiresGrad = true;
      const warped = warpAtlas(atlas, oneHotLabels, flow, labelGradient);
      expect(warped.labels.requiresGrad).toBe(labelGradient);
      let total: Tensor;
      if (labelGradient) {
        // The full graph: L_dice recorded and added with weight 0.
        const dice = diceLoss(probs, warped.labels, { excludeBackground: false });
        total = add(
          add(smoothnessLoss(flow), nccLoss(warped.image, target, { window: 3 })),
          scale(dice, 0),
        );
        dices.push(await dice.item());
      } else {
        const losses = registrationLosses(flow, warped, target, probs, options);
        expect(losses.dice.requiresGrad).toBe(false);
        total = losses.total;
        dices.push(await losses.dice.item());
      }
      backward(total);
      gradients.push(await flow.grad!.toArray());
    }
    expect(dices[0]).toBe(dices[1]);
    expect(gradients[0].some((g) => g !== 0)).toBe(true);
    expect(Array.from(gradients[0])).toEqual(Array.from(gradients[1]));
  });
});
