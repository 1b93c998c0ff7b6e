import { beforeAll, describe, expect, it } from 'vitest';
import {
  Random,
  add,
  gradCheck,
  liveTensorCount,
  nn,
  noGrad,
  reshape,
  sum,
  tensor,
  tidy,
  zeros,
  type Tensor,
} from '../src/index.js';
import { matmul } from '../src/ops/matmul.js';
import { binaryRef } from '../src/reference/elementwise.js';
import { matmulRef } from '../src/reference/matmul.js';
import type { NDArray } from '../src/reference/ndarray.js';
import { device, expectClose, hostAndDevice } from './helpers.js';

beforeAll(device);

const { init } = nn;

// A module tree shaped like a small encoder, mirrored by this PyTorch code
// to get the expected names and their order (torch 1.13):
//   Conv: weight [cout, cin, 3, 3, 3], bias [cout]
//   Level: buffer running_mean, conv1, conv2, non-persistent buffer scratch
//   Encoder: embed [2, 3], levels = ModuleList([Level, Level]),
//     head = Conv(1, 2)
//   Net: encoder, then the parameter scale [1]
class Conv extends nn.Module {
  readonly weight: Tensor;
  readonly bias: Tensor;

  constructor(outChannels: number, inChannels: number, seed: number) {
    super();
    const random = new Random(seed);
    const shape = [outChannels, inChannels, 3, 3, 3];
    this.weight = this.param('weight', init.defaultWeight(shape, random));
    const { fanIn } = init.computeFans(shape);
    const bias = init.defaultBias([outChannels], fanIn, random);
    this.bias = this.param('bias', bias);
  }
}

class Level extends nn.Module {
  readonly conv1: Conv;
  readonly conv2: Conv;

  constructor(channels: number, seed: number) {
    super();
    this.buffer('running_mean', zeros([channels]));
    this.conv1 = this.module('conv1', new Conv(channels, channels, seed));
    this.conv2 = this.module('conv2', new Conv(channels, channels, seed + 1));
    this.buffer('scratch', zeros([1]), { persistent: false });
  }
}

class Encoder extends nn.Module {
  readonly levels: nn.ModuleList<Level>;

  constructor(seed: number) {
    super();
    this.param('embed', init.normal([2, 3], 0, 1, seed));
    this.levels = this.moduleList('levels', [
      new Level(2, seed + 10),
      new Level(2, seed + 20),
    ]);
    this.module('head', new Conv(1, 2, seed + 30));
  }
}

class Net extends nn.Module {
  readonly encoder: Encoder;

  constructor(seed = 1) {
    super();
    this.encoder = this.module('encoder', new Encoder(seed));
    this.param('scale', tensor([2], [1]));
  }
}

const PYTORCH_STATE_KEYS = [
  'scale',
  'encoder.embed',
  'encoder.levels.0.running_mean',
  'encoder.levels.0.conv1.weight',
  'encoder.levels.0.conv1.bias',
  'encoder.levels.0.conv2.weight',
  'encoder.levels.0.conv2.bias',
  'encoder.levels.1.running_mean',
  'encoder.levels.1.conv1.weight',
  'encoder.levels.1.conv1.bias',
  'encoder.levels.1.conv2.weight',
  'encoder.levels.1.conv2.bias',
  'encoder.head.weight',
  'encoder.head.bias',
];

function disposeState(state: Map<string, Tensor>): void {
  for (const t of state.values()) t.dispose();
}

describe('module naming', () => {
  it('state keys match torch order', () => {
    const net = new Net();
    const state = net.stateDict();
    expect([...state.keys()]).toEqual(PYTORCH_STATE_KEYS);
    disposeState(state);
    net.dispose();
  });

  it('named parameters skip buffers', () => {
    const net = new Net();
    const names = net.namedParameters().map(([name]) => name);
    const expected = PYTORCH_STATE_KEYS.filter(
      (key) => !key.endsWith('running_mean'),
    );
    expect(names).toEqual(expected);
    for (const p of net.parameters()) {
      expect(p.requiresGrad).toBe(true);
      expect(p.gradFn).toBeNull();
    }
    net.dispose();
  });

  it('named modules in depth-first order', () => {
    const net = new Net();
    expect(net.namedModules().map(([name]) => name)).toEqual([
      '',
      'encoder',
      'encoder.levels',
      'encoder.levels.0',
      'encoder.levels.0.conv1',
      'encoder.levels.0.conv2',
      'encoder.levels.1',
      'encoder.levels.1.conv1',
      'encoder.levels.1.conv2',
      'encoder.head',
    ]);
    expect(net.namedBuffers().map(([name]) => name)).toEqual([
      'encoder.levels.0.running_mean',
      'encoder.levels.0.scratch',
      'encoder.levels.1.running_mean',
      'encoder.levels.1.scratch',
    ]);
    net.dispose();
  });

  it('module list indexes and iterates', () => {
    const net = new Net();
    const levels = net.encoder.levels;
    expect(levels.length).toBe(2);
    expect([...levels]).toEqual([levels.at(0), levels.at(1)]);
    expect(levels.at(-1)).toBe(levels.at(1));
    expect(() => levels.at(2)).toThrow(
      'ModuleList.at: index 2 is out of range for 2 items',
    );
    net.dispose();
  });

  it('parameter count matches torch', () => {
    const net = new Net();
    // sum(p.numel() for p in net.parameters()) of the PyTorch mirror.
    expect(net.parameterCount()).toBe(502);
    net.dispose();
  });

  it('tied weights are listed once', () => {
    class Tied extends nn.Module {
      constructor() {
        super();
        const shared = this.param('weight', tensor([1, 2], [2]));
        const child = this.module('child', new nn.Module());
        child.param('weight', shared);
      }
    }
    const tied = new Tied();
    expect(tied.namedParameters().map(([name]) => name)).toEqual(['weight']);
    expect(tied.parameterCount()).toBe(2);
    const state = tied.stateDict();
    expect([...state.keys()]).toEqual(['weight', 'child.weight']);
    disposeState(state);
    tied.dispose();
  });

  it('rejects duplicate and dotted names', () => {
    const net = new Net();
    expect(() => net.param('scale', tensor([1], [1]))).toThrow(
      'Net.param: "scale" is already registered',
    );
    expect(() => net.module('encoder', new nn.Module())).toThrow(
      'Net.module: "encoder" is already registered',
    );
    expect(() => net.buffer('a.b', zeros([1]))).toThrow(
      'Net.buffer: name "a.b" is invalid; names must be non-empty and contain no "."',
    );
    net.dispose();
  });

  it('rejects a non-leaf parameter', () => {
    const module = new nn.Module();
    const x = tensor([1, 2], [2], { requiresGrad: true });
    const view = reshape(x, [2, 1]);
    expect(() => module.param('weight', view)).toThrow(
      'Module.param("weight"): tensor of shape [2,1] was computed by reshape; ' +
        'a parameter must be a leaf tensor (create it with tensor() or an ' +
        'initialiser, or compute it under noGrad())',
    );
    view.dispose();
    x.dispose();
  });
});

describe('module state', () => {
  it('stateDict round trip restores values', async () => {
    const source = new Net(1);
    const target = new Net(2);
    const weightBefore = target.encoder.levels.at(1).conv2.weight;
    const differs = await target.encoder.levels.at(1).conv2.weight.toArray();
    const state = source.stateDict();
    const result = target.loadStateDict(state);
    expect(result).toEqual({ missingKeys: [], unexpectedKeys: [] });
    const sourceState = source.stateDict();
    const targetState = target.stateDict();
    for (const key of PYTORCH_STATE_KEYS) {
      const got = await targetState.get(key)!.toArray();
      const expected = await sourceState.get(key)!.toArray();
      expect(Array.from(got), key).toEqual(Array.from(expected));
    }
    const sourceWeight = sourceState.get('encoder.levels.1.conv2.weight')!;
    expect(Array.from(differs)).not.toEqual(
      Array.from(await sourceWeight.toArray()),
    );
    // Values were copied into the existing tensors, not swapped in.
    expect(target.encoder.levels.at(1).conv2.weight).toBe(weightBefore);
    expect(weightBefore.version).toBe(1);
    for (const s of [state, sourceState, targetState]) disposeState(s);
    source.dispose();
    target.dispose();
  });

  it('stateDict values share live storage', async () => {
    const net = new Net();
    const state = net.stateDict();
    const scale = state.get('scale')!;
    expect(scale.requiresGrad).toBe(false);
    scale.dispose();
    // Disposing the handle leaves the module's tensor usable.
    expect(Array.from(await net.parameters()[0].toArray())).toEqual([2]);
    disposeState(state);
    net.dispose();
  });

  it('strict load names missing, unexpected and mismatched keys', async () => {
    const net = new Net();
    const state = net.stateDict();
    state.get('encoder.embed')!.dispose();
    state.delete('encoder.embed');
    state.get('encoder.head.bias')!.dispose();
    state.delete('encoder.head.bias');
    state.set('encoder.extra', zeros([3]));
    state.get('scale')!.dispose();
    state.set('scale', tensor([5, 6], [2]));
    expect(() => net.loadStateDict(state)).toThrow(
      'Net.loadStateDict: shape mismatch for scale (state [2], module [1]); ' +
        'missing keys encoder.embed, encoder.head.bias; unexpected keys ' +
        'encoder.extra. Nothing was loaded.',
    );
    expect(Array.from(await net.parameters()[0].toArray())).toEqual([2]);
    disposeState(state);
    net.dispose();
  });

  it('strict load counts keys past the tenth', () => {
    const net = new Net();
    const state = new Map<string, Tensor>();
    for (let i = 0; i < 12; i++) state.set(`stray.${i}`, zeros([1]));
    const message = (() => {
      try {
        net.loadStateDict(state);
      } catch (error) {
        return (error as Error).message;
      }
      return 'no error';
    })();
    expect(message).toContain('unexpected keys stray.0, stray.1, stray.2, stray.3, stray.4, stray.5, stray.6, stray.7, stray.8, stray.9 and 2 more.');
    disposeState(state);
    net.dispose();
  });

  it('non-strict load reports keys and still checks shapes', async () => {
    const net = new Net();
    const partial = new Map<string, Tensor>([
      ['scale', tensor([7], [1])],
      ['unknown', zeros([1])],
    ]);
    const result = net.loadStateDict(partial, { strict: false });
    expect(result.unexpectedKeys).toEqual(['unknown']);
    expect(result.missingKeys).toEqual(PYTORCH_STATE_KEYS.slice(1));
    expect(Array.from(await net.parameters()[0].toArray())).toEqual([7]);
    partial.get('scale')!.dispose();
    partial.set('scale', zeros([3]));
    expect(() => net.loadStateDict(partial, { strict: false })).toThrow(
      'Net.loadStateDict: shape mismatch for scale (state [3], module [1]). ' +
        'Nothing was loaded.',
    );
    disposeState(partial);
    net.dispose();
  });

  it('train and eval reach every submodule', () => {
    const net = new Net();
    expect(net.namedModules().every(([, m]) => m.training)).toBe(true);
    net.eval();
    expect(net.namedModules().every(([, m]) => !m.training)).toBe(true);
    net.encoder.train();
    expect(net.training).toBe(false);
    expect(net.encoder.levels.at(0).conv1.training).toBe(true);
    net.dispose();
  });

  it('zeroGrad and dispose free every tensor', () => {
    const before = liveTensorCount();
    const net = new Net();
    for (const p of net.parameters()) p.grad = zeros(p.shape);
    const count = liveTensorCount() - before;
    // 12 parameters, 12 gradients, 4 buffers.
    expect(count).toBe(28);
    net.zeroGrad();
    expect(net.parameters().every((p) => p.grad === null)).toBe(true);
    expect(liveTensorCount() - before).toBe(16);
    net.dispose();
    expect(liveTensorCount()).toBe(before);
  });

  it('modules built inside tidy survive it', async () => {
    let net: Net | null = null;
    tidy(() => {
      net = new Net();
    });
    const params = (net as unknown as Net).parameters();
    expect(params.some((p) => p.isDisposed)).toBe(false);
    expect(Array.from(await params[0].toArray())).toEqual([2]);
    (net as unknown as Net).dispose();
  });

  it('setRequiresGrad freezes parameters', () => {
    const net = new Net();
    net.setRequiresGrad(false);
    expect(net.parameters().some((p) => p.requiresGrad)).toBe(false);
    net.setRequiresGrad(true);
    expect(net.parameters().every((p) => p.requiresGrad)).toBe(true);
    net.dispose();
  });
});

describe('init fans and gains', () => {
  // torch.nn.init._calculate_fan_in_and_fan_out (torch 1.13) on these shapes.
  const cases: [number[], number, number][] = [
    [[5, 3], 3, 5],
    [[8, 4, 3, 3, 3], 108, 216],
    [[6, 2, 5], 10, 30],
    [[4, 7, 2, 3], 42, 24],
    [[3, 0], 0, 3],
  ];
  for (const [shape, fanIn, fanOut] of cases) {
    it(`fans of [${shape.join(',')}]`, () => {
      expect(init.computeFans(shape)).toEqual({ fanIn, fanOut });
    });
  }

  it('fans reject rank 1', () => {
    expect(() => init.computeFans([4])).toThrow(
      'computeFans: shape [4] has rank 1; fans are defined for weights of ' +
        'rank 2 or more',
    );
  });

  it('gains match calculate_gain', () => {
    // torch.nn.init.calculate_gain values (torch 1.13).
    const leaky = init.calculateGain('leaky_relu', Math.sqrt(5));
    expect(leaky).toBeCloseTo(0.5773502691896257, 15);
    expect(init.calculateGain('relu')).toBe(Math.SQRT2);
    expect(init.calculateGain('tanh')).toBeCloseTo(5 / 3, 15);
    expect(init.calculateGain('selu')).toBe(0.75);
    expect(init.calculateGain('conv3d')).toBe(1);
  });
});

interface Stats {
  mean: number;
  std: number;
  maxAbs: number;
}

function stats(values: Float32Array): Stats {
  let sum = 0;
  let maxAbs = 0;
  for (const v of values) {
    sum += v;
    maxAbs = Math.max(maxAbs, Math.abs(v));
  }
  const mean = sum / values.length;
  let squares = 0;
  for (const v of values) squares += (v - mean) ** 2;
  return { mean, std: Math.sqrt(squares / values.length), maxAbs };
}

describe('init distributions', () => {
  it('default weight bound is 1/sqrt(fanIn)', async () => {
    const shape = [16, 8, 3, 3, 3];
    const bound = 1 / Math.sqrt(8 * 27);
    const t = init.defaultWeight(shape, 3);
    const values = await t.toArray();
    const s = stats(values);
    expect(s.maxAbs).toBeLessThanOrEqual(bound);
    // 3456 uniform draws: the extreme is within 1% of the bound.
    expect(s.maxAbs).toBeGreaterThan(0.99 * bound);
    // Uniform(-b, b) has standard deviation b / sqrt(3).
    expect(Math.abs(s.std / (bound / Math.sqrt(3)) - 1)).toBeLessThan(0.05);
    t.dispose();
  });

  it('default bias bound uses the weight fanIn', async () => {
    const t = init.defaultBias([500], 25, 4);
    const s = stats(await t.toArray());
    expect(s.maxAbs).toBeLessThanOrEqual(0.2);
    expect(s.maxAbs).toBeGreaterThan(0.19);
    t.dispose();
    const empty = init.defaultBias([3], 0, 4);
    expect(Array.from(await empty.toArray())).toEqual([0, 0, 0]);
    empty.dispose();
  });

  it('kaiming normal std is gain / sqrt(fan)', async () => {
    const fanOut = 20 * 9;
    const options = { mode: 'fanOut', nonlinearity: 'relu' } as const;
    const t = init.kaimingNormal([20, 30, 3, 3], options, 5);
    const s = stats(await t.toArray());
    const std = Math.SQRT2 / Math.sqrt(fanOut);
    expect(Math.abs(s.std / std - 1)).toBeLessThan(0.03);
    expect(Math.abs(s.mean)).toBeLessThan(0.01);
    t.dispose();
  });

  it('kaiming uniform relu bound', async () => {
    const t = init.kaimingUniform([64, 50], { nonlinearity: 'relu' }, 6);
    const s = stats(await t.toArray());
    const bound = Math.sqrt(6 / 50);
    expect(s.maxAbs).toBeLessThanOrEqual(bound);
    expect(s.maxAbs).toBeGreaterThan(0.99 * bound);
    t.dispose();
  });

  it('xavier uniform bound', async () => {
    const t = init.xavierUniform([40, 60], 2, 7);
    const s = stats(await t.toArray());
    const bound = 2 * Math.sqrt(6 / 100);
    expect(s.maxAbs).toBeLessThanOrEqual(bound);
    expect(s.maxAbs).toBeGreaterThan(0.99 * bound);
    t.dispose();
  });

  it('xavier normal std', async () => {
    const t = init.xavierNormal([50, 70], 1, 8);
    const s = stats(await t.toArray());
    expect(Math.abs(s.std / Math.sqrt(2 / 120) - 1)).toBeLessThan(0.03);
    t.dispose();
  });

  it('trunc normal stays in bounds', async () => {
    const options = { mean: 0.5, std: 1, low: -0.5, high: 1.5 };
    const t = init.truncNormal([4000], options, 9);
    const values = await t.toArray();
    expect(Math.min(...values)).toBeGreaterThanOrEqual(-0.5);
    expect(Math.max(...values)).toBeLessThanOrEqual(1.5);
    // Symmetric truncation of N(0.5, 1) at +-1 keeps the mean at 0.5.
    expect(Math.abs(stats(values).mean - 0.5)).toBeLessThan(0.03);
    t.dispose();
    const vit = init.truncNormal([2000], { std: 0.02 }, 10);
    const vitStats = stats(await vit.toArray());
    expect(Math.abs(vitStats.std / 0.02 - 1)).toBeLessThan(0.05);
    vit.dispose();
  });

  it('trunc normal rejects an empty interval', () => {
    expect(() => init.truncNormal([2], { low: 1, high: 1 })).toThrow(
      'truncNormal: needs low < high and std > 0, got low 1, high 1, std 1',
    );
    expect(() => init.truncNormal([1], { low: 40, high: 41 }, 1)).toThrow(
      /truncNormal: no value in \[40, 41\] after 100000 draws/,
    );
  });

  it('same seed gives the same values', async () => {
    const a = await init.kaimingUniform([7, 5], {}, 42).toArray();
    const b = await init.kaimingUniform([7, 5], {}, 42).toArray();
    const c = await init.kaimingUniform([7, 5], {}, 43).toArray();
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });

  it('shared generator advances between tensors', async () => {
    const random = new Random(11);
    const first = await init.uniform([6], -1, 1, random).toArray();
    const second = await init.uniform([6], -1, 1, random).toArray();
    expect(first).not.toEqual(second);
    const replay = new Random(11);
    expect(await init.uniform([6], -1, 1, replay).toArray()).toEqual(first);
  });

  it('manualSeed restarts the default stream', async () => {
    init.manualSeed(5);
    const a = await init.normal([4], 0, 1).toArray();
    const b = await init.normal([4], 0, 1).toArray();
    init.manualSeed(5);
    expect(await init.normal([4], 0, 1).toArray()).toEqual(a);
    expect(await init.normal([4], 0, 1).toArray()).toEqual(b);
    expect(a).not.toEqual(b);
  });
});

function linearRef(x: NDArray, weight: NDArray, bias?: NDArray): NDArray {
  const product = matmulRef(x, weight, { transposeB: true });
  return bias ? binaryRef(product, bias, (a, b) => a + b) : product;
}

describe('linear', () => {
  it('weight and bias follow torch layout', () => {
    const layer = new nn.Linear(3, 4, { seed: 1 });
    expect(layer.weight.shape).toEqual([4, 3]);
    expect(layer.bias!.shape).toEqual([4]);
    expect(layer.namedParameters().map(([name]) => name)).toEqual([
      'weight',
      'bias',
    ]);
    expect(layer.parameterCount()).toBe(16);
    layer.dispose();
    const noBias = new nn.Linear(3, 4, { bias: false, seed: 1 });
    expect(noBias.bias).toBeNull();
    expect(noBias.namedParameters().map(([name]) => name)).toEqual(['weight']);
    noBias.dispose();
  });

  it('initialisation bounds and seed', async () => {
    const a = new nn.Linear(50, 40, { seed: 3 });
    const b = new nn.Linear(50, 40, { seed: 3 });
    const bound = 1 / Math.sqrt(50);
    const weight = await a.weight.toArray();
    const bias = await a.bias!.toArray();
    expect(stats(weight).maxAbs).toBeLessThanOrEqual(bound);
    expect(stats(weight).maxAbs).toBeGreaterThan(0.99 * bound);
    expect(stats(bias).maxAbs).toBeLessThanOrEqual(bound);
    expect(await b.weight.toArray()).toEqual(weight);
    expect(await b.bias!.toArray()).toEqual(bias);
    a.dispose();
    b.dispose();
  });

  it('forward matches the float64 reference', async () => {
    const layer = new nn.Linear(5, 3, { seed: 4 });
    const [xHost, x] = hostAndDevice([2, 7, 5], 5);
    const weight = {
      shape: [3, 5],
      data: Float64Array.from(await layer.weight.toArray()),
    };
    const bias = {
      shape: [3],
      data: Float64Array.from(await layer.bias!.toArray()),
    };
    const y = layer.forward(x);
    expect(y.shape).toEqual([2, 7, 3]);
    const expected = linearRef(xHost, weight, bias).data;
    expectClose(await y.toArray(), expected, 1e-5, 1e-6);
    const [vectorHost, vector] = hostAndDevice([5], 6);
    const single = layer.forward(vector);
    expect(single.shape).toEqual([3]);
    expectClose(
      await single.toArray(),
      linearRef(vectorHost, weight, bias).data,
      1e-5,
      1e-6,
    );
    for (const t of [x, y, vector, single]) t.dispose();
    layer.dispose();
  });

  it('forward frees its intermediates', () => {
    const layer = new nn.Linear(4, 2, { seed: 7 });
    const x = tensor([1, 2, 3, 4, 5, 6, 7, 8], [2, 4]);
    const before = liveTensorCount();
    const inference = noGrad(() => layer.forward(x));
    expect(liveTensorCount()).toBe(before + 1);
    inference.dispose();
    // With autograd the graph also keeps matmul's two saved inputs alive.
    const y = layer.forward(x);
    expect(liveTensorCount()).toBe(before + 3);
    y.dispose();
    expect(liveTensorCount()).toBe(before);
    x.dispose();
    layer.dispose();
  });

  it('input gradient matches finite differences', async () => {
    const layer = new nn.Linear(4, 3, { seed: 2 });
    const weight = {
      shape: [3, 4],
      data: Float64Array.from(await layer.weight.toArray()),
    };
    const bias = {
      shape: [3],
      data: Float64Array.from(await layer.bias!.toArray()),
    };
    const result = await gradCheck(
      (x) => layer.forward(x),
      (x) => linearRef(x, weight, bias),
      [{ shape: [2, 5, 4] }],
    );
    expect(result.ok, result.report).toBe(true);
    layer.dispose();
  });

  it('weight gradients match finite differences', async () => {
    // The product Linear computes, with weight and bias as checked inputs.
    const result = await gradCheck(
      (x, weight, bias) => add(matmul(x, weight, { transposeB: true }), bias),
      (x, weight, bias) => linearRef(x, weight, bias),
      [{ shape: [3, 4] }, { shape: [2, 4] }, { shape: [2] }],
    );
    expect(result.ok, result.report).toBe(true);
  });

  it('layer gradients reach weight and bias', async () => {
    const layer = new nn.Linear(4, 2, { seed: 8 });
    const [xHost, x] = hostAndDevice([3, 4], 9);
    const loss = tidy(() => sum(layer.forward(x)));
    loss.backward();
    // d sum(x W^T + b) / dW[o, i] = sum over rows of x[:, i]; / db = rows.
    const columnSums = [0, 1, 2, 3].map((i) =>
      [0, 1, 2].reduce((total, row) => total + xHost.data[row * 4 + i], 0),
    );
    expectClose(
      await layer.weight.grad!.toArray(),
      [...columnSums, ...columnSums],
      1e-5,
      1e-6,
      'weight gradient',
    );
    expect(Array.from(await layer.bias!.grad!.toArray())).toEqual([3, 3]);
    loss.dispose();
    x.dispose();
    layer.dispose();
  });

  it('rejects the wrong feature count', () => {
    const layer = new nn.Linear(3, 2, { seed: 1 });
    const x = zeros([4, 5]);
    expect(() => layer.forward(x)).toThrow(
      'Linear: input [4,5] must have 3 features in its last axis (weight [2,3])',
    );
    expect(() => new nn.Linear(2.5, 3)).toThrow(
      'Linear: inFeatures must be a non-negative integer, got 2.5',
    );
    x.dispose();
    layer.dispose();
  });
});
