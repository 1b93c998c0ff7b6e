import { beforeAll, describe, expect, it } from 'vitest';
import { backward, randn, tensor, tidy, type Tensor } from '../src/index.js';
import {
  ConvBlock,
  Encoder3d,
  RRL_PRESETS,
  RrlMedSam,
  SAM_VIT_B_PARAMETERS,
  encoderParameterCount,
  rrlConfig,
  type RrlModelConfig,
} from '../src/nn/rrl/index.js';
import { SAM_CONFIGS, samEncoderParameterCount } from '../src/nn/sam/config.js';
import { copyInto } from '../src/nn/copy.js';
import { Random } from '../src/random.js';
import { conv3dRef } from '../src/reference/conv.js';
import { instanceNormRef } from '../src/reference/norm.js';
import type { NDArray } from '../src/reference/ndarray.js';
import { device, randomValues } from './helpers.js';
import { checkModuleGradients, randomizeParameters } from './module-gradcheck.js';

beforeAll(device);

const K1 = 4; // numClasses: background and three structures.

function tinyModel(overrides: Partial<RrlModelConfig> = {}): RrlMedSam {
  return new RrlMedSam({ preset: 'tiny', numClasses: K1, ...overrides });
}

function shapes(tensors: readonly Tensor[]): number[][] {
  return tensors.map((t) => [...t.shape]);
}

describe('rrl config', () => {
  it('default encoder near 3% of vit-b', () => {
    expect(SAM_VIT_B_PARAMETERS).toBe(samEncoderParameterCount(SAM_CONFIGS.vit_b));
    const config = rrlConfig({ numClasses: K1 });
    expect(config.encoderChannels).toEqual([16, 32, 64, 128, 208]);
    const count = encoderParameterCount(config);
    expect(count).toBe(2_767_920);
    const encoder = new Encoder3d(config, 1);
    expect(encoder.parameterCount()).toBe(count);
    encoder.dispose();
    const share = count / SAM_VIT_B_PARAMETERS;
    expect(share).toBeGreaterThan(0.029);
    expect(share).toBeLessThan(0.032);
  });

  it('closed-form count matches every preset', () => {
    for (const preset of Object.keys(RRL_PRESETS) as (keyof typeof RRL_PRESETS)[]) {
      for (const norm of ['instance', 'none'] as const) {
        const config = rrlConfig({ preset, numClasses: K1, norm });
        const encoder = new Encoder3d(config, 2);
        expect(encoder.parameterCount(), `${preset} ${norm}`).toBe(
          encoderParameterCount(config),
        );
        encoder.dispose();
      }
    }
  });

  it('rejects invalid fields', () => {
    expect(() => rrlConfig({ numClasses: 1 })).toThrow(
      'rrlConfig: numClasses must be an integer >= 2 (background and at least one structure), got 1',
    );
    expect(() =>
      rrlConfig({ numClasses: K1, encoderChannels: [4, 8, 16, 32] }),
    ).toThrow('rrlConfig: encoderChannels must list 5 widths, got [4, 8, 16, 32]');
    expect(() =>
      rrlConfig({ numClasses: K1, norm: 'group', normGroups: 3 }),
    ).toThrow('rrlConfig: encoderChannels width 16 is not a multiple of normGroups 3');
    expect(() => rrlConfig({ numClasses: K1, promptHiddenChannels: 6 })).toThrow(
      'rrlConfig: promptHiddenChannels must be a multiple of 4 and at least 8, got 6',
    );
    expect(() =>
      rrlConfig({ numClasses: K1, decoderConvs: 3 as 1 }),
    ).toThrow('rrlConfig: decoderConvs must be 1 or 2, got 3');
    expect(() => rrlConfig({ numClasses: K1, registrationConvs: 0 as 1 })).toThrow(
      'rrlConfig: registrationConvs must be 1 or 2, got 0',
    );
    expect(() => rrlConfig({ numClasses: K1, flowLevel: 2 as 1 })).toThrow(
      'rrlConfig: flowLevel must be 0 or 1, got 2',
    );
    expect(() => rrlConfig({ numClasses: K1, registrationChannels: [8, 8, 8] })).toThrow(
      'rrlConfig: registrationChannels must list 4 widths, got [8, 8, 8]',
    );
    expect(() => rrlConfig({ numClasses: K1, segmentationLevel: 2 as 1 })).toThrow(
      'rrlConfig: segmentationLevel must be 0 or 1, got 2',
    );
    expect(() => rrlConfig({ numClasses: K1, segmentationConvs: 3 as 1 })).toThrow(
      'rrlConfig: segmentationConvs must be 1 or 2, got 3',
    );
    expect(() => rrlConfig({ numClasses: K1, segmentationChannels: [8, 0, 8, 8] })).toThrow(
      'rrlConfig: segmentationChannels [8, 0, 8, 8] must contain positive integers',
    );
    expect(() =>
      rrlConfig({ numClasses: K1, preset: 'huge' as 'tiny' }),
    ).toThrow('rrlConfig: unknown preset "huge"; expected one of default, cpu, tiny');
  });
});

describe('rrl modules', () => {
  it('parameter names follow pytorch', () => {
    const model = tinyModel();
    const names = model.namedParameters().map(([name]) => name);
    const expected = [
      'general_encoder.levels.0.conv1.weight',
      'general_encoder.levels.0.norm1.bias',
      'general_encoder.levels.4.conv2.weight',
      'general_decoder.up.levels.3.conv1.weight',
      'general_decoder.head.weight',
      'medical_encoder.levels.2.norm2.weight',
      'registration_decoder.up.levels.0.conv2.bias',
      'registration_decoder.flow.weight',
      'medical_decoder.prompt_encoder.mask_downscaling.0.weight',
      'medical_decoder.prompt_encoder.mask_downscaling.6.bias',
      'medical_decoder.decoder.head.bias',
      'projection.conv.weight',
    ];
    for (const name of expected) expect(names, name).toContain(name);
    const weights = new Map(model.namedParameters());
    expect(weights.get('general_encoder.levels.1.conv1.weight')!.shape).toEqual([4, 2, 3, 3, 3]);
    expect(weights.get('registration_decoder.up.levels.3.conv1.weight')!.shape).toEqual([
      8,
      2 * 8 + 2 * 8,
      3,
      3,
      3,
    ]);
    expect(weights.get('projection.conv.weight')!.shape).toEqual([256, 8, 1, 1, 1]);
    model.dispose();
  });

  it('one conv per decoder level', () => {
    const model = tinyModel({ decoderConvs: 1 });
    const names = model.namedParameters().map(([name]) => name);
    expect(names).toContain('general_encoder.levels.0.conv2.weight');
    expect(names).toContain('registration_decoder.up.levels.0.conv1.weight');
    expect(names.filter((name) => /up\.levels\.\d\.conv2/.test(name))).toEqual([]);
    model.dispose();
  });

  it('encoder strides and pyramid shapes', () => {
    const model = tinyModel();
    const x = randn([1, 1, 16, 32, 48], 3);
    const pyramid = model.generalEncoder.forward(x);
    expect(shapes(pyramid)).toEqual([
      [1, 2, 16, 32, 48],
      [1, 4, 8, 16, 24],
      [1, 4, 4, 8, 12],
      [1, 8, 2, 4, 6],
      [1, 8, 1, 2, 3],
    ]);
    const strides = model.generalEncoder.levels.items.map((b) => b.conv1.stride[0]);
    expect(strides).toEqual([1, 2, 2, 2, 2]);
    for (const t of [...pyramid, x]) t.dispose();
    model.dispose();
  });

  it('forward shapes and probabilities', async () => {
    const model = tinyModel();
    const atlas = randn([1, 1, 16, 32, 32], 4);
    const target = randn([1, 1, 16, 32, 32], 5);
    const out = model.forward(atlas, target);
    expect(out.flow.shape).toEqual([1, 3, 16, 32, 32]);
    expect(out.generalProbs.shape).toEqual([1, K1, 16, 32, 32]);
    expect(out.medicalProbs.shape).toEqual([1, K1, 16, 32, 32]);
    const probs = await out.medicalProbs.toArray();
    const voxels = 16 * 32 * 32;
    let worst = 0;
    for (let v = 0; v < voxels; v++) {
      let total = 0;
      for (let k = 0; k < K1; k++) total += probs[k * voxels + v];
      worst = Math.max(worst, Math.abs(total - 1));
    }
    expect(worst).toBeLessThan(1e-5);
    // The flow layer starts at Normal(0, 1e-5), so the first fields are
    // close to the identity transform.
    const flow = await out.flow.toArray();
    expect(Math.max(...flow.map(Math.abs))).toBeLessThan(1e-2);
    const projected = model.project(model.generalEncoder.forward(target));
    expect(projected.shape).toEqual([1, 256, 1, 2, 2]);
    for (const t of [atlas, target, out.flow, out.generalProbs, out.medicalProbs, projected]) {
      t.dispose();
    }
    model.dispose();
  });

  it('rejects sizes not divisible by 16', () => {
    const model = tinyModel();
    const atlas = randn([1, 1, 20, 32, 32], 6);
    const target = randn([1, 1, 20, 32, 32], 7);
    expect(() => model.register(atlas, target)).toThrow(
      'RrlMedSam.register: atlas [1,1,20,32,32] has spatial size [20,32,32]; ' +
        'D, H and W must be positive multiples of 16 because the encoder ' +
        'halves the grid 4 times (crop or pad the volume)',
    );
    const other = randn([1, 1, 32, 32, 32], 8);
    expect(() => model.register(other, randn([1, 1, 16, 32, 32], 9))).toThrow(
      'RrlMedSam.register: atlas [1,1,32,32,32] and target [1,1,16,32,32] must have the same shape',
    );
    for (const t of [atlas, target, other]) t.dispose();
    model.dispose();
  });

  it('prompt mask changes the medical output', async () => {
    const model = tinyModel();
    const target = randn([1, 1, 16, 32, 32], 10);
    const pyramid = model.medicalEncoder.forward(target);
    // Two one-hot masks: class 1 in the front or in the back half along D.
    const voxels = 16 * 32 * 32;
    const halfMask = (front: boolean) =>
      tensor(
        Float32Array.from({ length: K1 * voxels }, (_, i) => {
          const inFront = i % voxels < voxels / 2;
          const label = inFront === front ? 1 : 0;
          return Number(Math.floor(i / voxels) === label);
        }),
        [1, K1, 16, 32, 32],
      );
    const a = await model.segmentMedical(pyramid, halfMask(true)).toArray();
    const b = await model.segmentMedical(pyramid, halfMask(false)).toArray();
    const difference = Math.max(...a.map((v, i) => Math.abs(v - b[i])));
    expect(difference).toBeGreaterThan(1e-6);
    expect(() => model.segmentMedical(pyramid, null)).toThrow(
      'AutoPromptDecoder: autoPrompt is on but no prompt mask was given',
    );
    model.dispose();
  });

  it('no-prompt model has no prompt encoder', () => {
    const model = tinyModel({ autoPrompt: false });
    const names = model.namedParameters().map(([name]) => name);
    expect(names.some((name) => name.includes('prompt_encoder'))).toBe(false);
    const target = randn([1, 1, 16, 32, 32], 11);
    const { targetPyramid } = model.register(target, target);
    const probs = model.segmentMedical(targetPyramid, null);
    expect(probs.shape).toEqual([1, K1, 16, 32, 32]);
    model.dispose();
  });

  it('integrates a velocity field', async () => {
    const model = tinyModel({ integrationSteps: 7, flowInitStd: 0.05 });
    const atlas = randn([1, 1, 16, 32, 32], 12);
    const target = randn([1, 1, 16, 32, 32], 13);
    const { flow } = model.register(atlas, target);
    expect(flow.shape).toEqual([1, 3, 16, 32, 32]);
    const values = await flow.toArray();
    expect(values.every(Number.isFinite)).toBe(true);
    expect(Math.max(...values.map(Math.abs))).toBeGreaterThan(0);
    model.dispose();
  });

  it('registration decoder on the half grid', async () => {
    const model = tinyModel({
      registrationChannels: [2, 6, 8, 8],
      registrationConvs: 2,
      registrationImages: true,
      flowLevel: 1,
    });
    const weights = new Map(model.namedParameters());
    const names = [...weights.keys()].filter((name) => name.startsWith('registration_decoder.'));
    // Blocks 0, 1, 2 produce levels 1, 2, 3; no block runs on the full grid.
    expect(names).toContain('registration_decoder.up.levels.2.conv2.weight');
    expect(names.some((name) => name.startsWith('registration_decoder.up.levels.3'))).toBe(false);
    // Level 1: level 2's 8 channels upsampled, both level-1 features (4
    // each) and the two images pooled to the half grid.
    expect(weights.get('registration_decoder.up.levels.0.conv1.weight')!.shape).toEqual([
      6,
      8 + 2 * 4 + 2,
      3,
      3,
      3,
    ]);
    expect(weights.get('registration_decoder.flow.weight')!.shape).toEqual([3, 6, 3, 3, 3]);
    // The segmentation decoders keep decoderChannels.
    expect(weights.get('general_decoder.up.levels.0.conv1.weight')!.shape[0]).toBe(2);

    // A constant field on the half grid, in half-grid voxels, is twice that
    // value in full-grid voxels.
    const zeroWeight = tensor(new Float32Array(3 * 6 * 27), [3, 6, 3, 3, 3]);
    const constantBias = tensor([0.5, -1, 0.25], [3]);
    copyInto('test', model.registrationDecoder.flow.weight, zeroWeight);
    copyInto('test', model.registrationDecoder.flow.bias!, constantBias);
    const atlas = randn([1, 1, 16, 32, 32], 14);
    const target = randn([1, 1, 16, 32, 32], 15);
    const { flow, targetPyramid } = model.register(atlas, target);
    expect(flow.shape).toEqual([1, 3, 16, 32, 32]);
    const values = await flow.toArray();
    const voxels = 16 * 32 * 32;
    for (const [channel, expected] of [1, -2, 0.5].entries()) {
      const plane = values.subarray(channel * voxels, (channel + 1) * voxels);
      expect(Math.max(...plane.map((v) => Math.abs(v - expected)))).toBeLessThan(1e-6);
    }
    // Without the images the decoder cannot run.
    expect(() => model.registrationDecoder.forward(targetPyramid, targetPyramid)).toThrow(
      'RegistrationDecoder: the atlas and target images are missing; this config has registrationImages, so pass them as the third argument',
    );
    for (const t of [atlas, target, flow, zeroWeight, constantBias, ...targetPyramid]) t.dispose();
    model.dispose();
  });

  it('segmentation decoders on the half grid', async () => {
    const model = tinyModel({ segmentationChannels: [2, 6, 8, 8], segmentationLevel: 1 });
    const weights = new Map(model.namedParameters());
    for (const decoder of ['general_decoder', 'medical_decoder.decoder']) {
      // Blocks 0, 1, 2 produce levels 1, 2, 3; the head reads level 1.
      expect(weights.get(`${decoder}.up.levels.0.conv1.weight`)!.shape[0]).toBe(6);
      expect(weights.has(`${decoder}.up.levels.3.conv1.weight`)).toBe(false);
      expect(weights.get(`${decoder}.head.weight`)!.shape).toEqual([K1, 6, 1, 1, 1]);
    }
    // The registration decoder keeps decoderChannels.
    expect(weights.get('registration_decoder.up.levels.0.conv1.weight')!.shape[0]).toBe(2);

    // Class scores that are constant on the half grid stay constant on the
    // full grid, so the probabilities are softmax(bias) at every voxel.
    const head = model.generalDecoder.head;
    const zeroWeight = tensor(new Float32Array(K1 * 6), [K1, 6, 1, 1, 1]);
    const bias = [0.5, -1, 2, 0];
    const constantBias = tensor(bias, [K1]);
    copyInto('test', head.weight, zeroWeight);
    copyInto('test', head.bias!, constantBias);
    const scan = randn([1, 1, 16, 32, 32], 17);
    const { probs, pyramid } = model.segmentGeneral(scan);
    expect(probs.shape).toEqual([1, K1, 16, 32, 32]);
    const values = await probs.toArray();
    const voxels = 16 * 32 * 32;
    const denominator = bias.reduce((total, b) => total + Math.exp(b), 0);
    for (const [channel, b] of bias.entries()) {
      const plane = values.subarray(channel * voxels, (channel + 1) * voxels);
      const expected = Math.exp(b) / denominator;
      expect(Math.max(...plane.map((v) => Math.abs(v - expected)))).toBeLessThan(1e-6);
    }
    for (const t of [zeroWeight, constantBias, scan, probs, ...pyramid]) t.dispose();
    model.dispose();
  });

  it('half-grid segmentation trains', async () => {
    // The ops on this path have their own finite-difference checks; here
    // the loss must reach the head and the half-grid blocks.
    const model = tinyModel({ segmentationChannels: [2, 4, 4, 8], segmentationLevel: 1 });
    const scan = randn([1, 1, 16, 32, 32], 18);
    const weights = randn([1, K1, 16, 32, 32], 19);
    const loss = tidy(() => model.segmentGeneral(scan).probs.mul(weights).sum());
    backward(loss);
    const decoder = model.generalDecoder;
    for (const [name, parameter] of [
      ['head', decoder.head.weight],
      ['level 1', decoder.up.levels.at(0).conv1.weight],
    ] as const) {
      const grad = await parameter.grad!.toArray();
      expect(grad.every(Number.isFinite), name).toBe(true);
      expect(Math.max(...grad.map(Math.abs)), name).toBeGreaterThan(0);
    }
    for (const t of [scan, weights, loss]) t.dispose();
    model.dispose();
  });

  it('registration decoder reads the images', async () => {
    const flowOf = async (images: boolean, seed: number) => {
      const model = tinyModel({ registrationImages: images, flowInitStd: 0.05 });
      const scan = randn([1, 1, 16, 32, 32], 16);
      const other = randn([1, 1, 16, 32, 32], seed);
      const pyramid = model.medicalEncoder.forward(scan);
      const flow = model.registrationDecoder.forward(pyramid, pyramid, { atlas: scan, target: other });
      const values = await flow.toArray();
      for (const t of [scan, other, flow, ...pyramid]) t.dispose();
      model.dispose();
      return values;
    };
    // The same pyramids with another target image: only a decoder that
    // reads the images gives another field.
    expect(await flowOf(false, 17)).toEqual(await flowOf(false, 18));
    expect(await flowOf(true, 17)).not.toEqual(await flowOf(true, 18));
  });

  it('same seed gives same weights', async () => {
    const a = tinyModel({ seed: 5 });
    const b = tinyModel({ seed: 5 });
    const c = tinyModel({ seed: 6 });
    const pa = await a.registrationDecoder.flow.weight.toArray();
    const pb = await b.registrationDecoder.flow.weight.toArray();
    const pc = await c.registrationDecoder.flow.weight.toArray();
    expect(pa).toEqual(pb);
    expect(pa).not.toEqual(pc);
    for (const m of [a, b, c]) m.dispose();
  });

  it('summary counts every module', () => {
    const model = tinyModel();
    const summary = model.summary();
    const top = summary.rows.filter((row) => !row.name.includes('.'));
    expect(top.map((row) => row.name)).toEqual([
      'general_encoder',
      'general_decoder',
      'medical_encoder',
      'registration_decoder',
      'medical_decoder',
      'projection',
    ]);
    expect(top.reduce((n, row) => n + row.parameters, 0)).toBe(summary.total);
    expect(summary.total).toBe(model.parameterCount());
    expect(summary.encoderParameters).toBe(encoderParameterCount(model.config));
    expect(summary.table).toContain('medical_decoder.prompt_encoder');
    expect(summary.table).toContain(
      `encoder: ${summary.encoderParameters.toLocaleString('en-US')} parameters`,
    );
    const printed: string[] = [];
    model.printSummary((line) => printed.push(line));
    expect(printed).toEqual([summary.table]);
    model.dispose();
  });
});

describe('conv block gradients', () => {
  const leaky = (x: NDArray, slope: number): NDArray => ({
    shape: x.shape,
    data: x.data.map((v) => (v > 0 ? v : slope * v)),
  });

  it('stride 2 block matches finite differences', async () => {
    const config = rrlConfig({ preset: 'tiny', numClasses: K1, leakySlope: 0.2 });
    const block = new ConvBlock(2, 3, config, new Random(3), 2);
    randomizeParameters(block, 4);
    const shape = [1, 2, 5, 6, 7];
    const input: NDArray = { shape, data: randomValues(shape, 5) };
    const stride2 = { stride: [2, 2, 2], padding: [1, 1, 1], dilation: [1, 1, 1] } as const;
    const stride1 = { stride: [1, 1, 1], padding: [1, 1, 1], dilation: [1, 1, 1] } as const;
    const reference = (x: NDArray, p: Map<string, NDArray>): NDArray => {
      let y = conv3dRef(x, p.get('conv1.weight')!, p.get('conv1.bias')!, {
        stride: [...stride2.stride],
        padding: [...stride2.padding],
        dilation: [...stride2.dilation],
      });
      y = leaky(instanceNormRef(y, p.get('norm1.weight')!, p.get('norm1.bias')!), 0.2);
      y = conv3dRef(y, p.get('conv2.weight')!, p.get('conv2.bias')!, {
        stride: [...stride1.stride],
        padding: [...stride1.padding],
        dilation: [...stride1.dilation],
      });
      return leaky(instanceNormRef(y, p.get('norm2.weight')!, p.get('norm2.bias')!), 0.2);
    };
    const result = await checkModuleGradients(
      block,
      input,
      (x) => tidy(() => block.forward(x)),
      reference,
      { rtol: 2e-2, atol: 2e-3, maxElements: 40 },
    );
    expect(result.ok, result.report).toBe(true);
    block.dispose();
  });
});
