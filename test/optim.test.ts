// Fixture text through vite's `?raw` import, which works in Node and in the
// browser project alike.
import optimJson from './fixtures/optim.json?raw';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  Adam,
  AdamW,
  SGD,
  emaUpdate,
  liveTensorCount,
  mul,
  sum,
  tensor,
  tidy,
  type Optimizer,
  type Tensor,
} from '../src/index.js';
import { device, expectClose } from './helpers.js';

beforeAll(device);

interface OptimCase {
  name: string;
  optimizer: 'SGD' | 'Adam' | 'AdamW';
  options: Record<string, number | boolean | number[]>;
  /** Per step, per parameter, the values after the step. */
  expected: number[][][];
}

interface OptimFixture {
  torch: string;
  shapes: number[][];
  params: number[][];
  /** Per step, per parameter, the gradient (null: no gradient that step). */
  grads: (number[] | null)[][];
  cases: OptimCase[];
}

// Written by scripts/make-optim-fixtures.py with torch 1.13.
const fixture = JSON.parse(optimJson) as OptimFixture;

function makeParams(): Tensor[] {
  return fixture.params.map((values, i) =>
    tensor(values, fixture.shapes[i], { requiresGrad: true }),
  );
}

function makeOptimizer(
  kind: OptimCase['optimizer'],
  params: Tensor[],
  options: OptimCase['options'],
): Optimizer {
  if (kind === 'SGD') return new SGD(params, options as { lr: number });
  if (kind === 'Adam') return new Adam(params, options as object);
  return new AdamW(params, options as object);
}

function setGradients(params: Tensor[], step: number): void {
  params.forEach((p, i) => {
    p.grad?.dispose();
    const values = fixture.grads[step][i];
    p.grad = values ? tensor(values, p.shape) : null;
  });
}

// The step in which the second parameter has no gradient.
const skippedStep = fixture.grads.findIndex((step) => step[1] === null);

async function snapshot(params: Tensor[]): Promise<Float32Array[]> {
  return Promise.all(params.map((p) => p.toArray()));
}

describe('optimisers against torch 1.13', () => {
  it('fixture covers every optimiser', () => {
    const kinds = new Set(fixture.cases.map((c) => c.optimizer));
    expect([...kinds].sort()).toEqual(['Adam', 'AdamW', 'SGD']);
    expect(fixture.grads.some((step) => step.includes(null))).toBe(true);
  });

  for (const testCase of fixture.cases) {
    it(`${testCase.name} matches torch`, async () => {
      const params = makeParams();
      const optimizer = makeOptimizer(
        testCase.optimizer,
        params,
        testCase.options,
      );
      for (let step = 0; step < fixture.grads.length; step++) {
        setGradients(params, step);
        optimizer.step();
        const got = await snapshot(params);
        got.forEach((values, i) => {
          expectClose(
            values,
            testCase.expected[step][i],
            1e-6,
            0,
            `${testCase.name} step ${step + 1} parameter ${i}`,
          );
        });
      }
      optimizer.zeroGrad();
      optimizer.dispose();
      for (const p of params) p.dispose();
    });
  }
});

describe('optimiser state', () => {
  const resumeCases = [
    ['SGD', { lr: 0.05, momentum: 0.8, dampening: 0.3, weightDecay: 0.02 }],
    ['Adam', { lr: 0.02, weightDecay: 0.1, amsgrad: true }],
    ['AdamW', { lr: 0.01, weightDecay: 0.05, amsgrad: true }],
  ] as const;
  for (const [kind, options] of resumeCases) {
    it(`${kind} resumes bit for bit from stateDict`, async () => {
      const cleanOptions = options as OptimCase['options'];
      const steps = fixture.grads.length;

      // Reference: every step on one optimiser.
      const straight = makeParams();
      const straightOptimizer = makeOptimizer(kind, straight, cleanOptions);
      for (let step = 0; step < steps; step++) {
        setGradients(straight, step);
        straightOptimizer.step();
      }
      const expected = await snapshot(straight);

      // Resumed: three steps, save, then a new optimiser on copies.
      const first = makeParams();
      const firstOptimizer = makeOptimizer(kind, first, cleanOptions);
      for (let step = 0; step < 3; step++) {
        setGradients(first, step);
        firstOptimizer.step();
      }
      const saved = firstOptimizer.stateDict();
      const savedValues = await snapshot(first);
      const second = savedValues.map((values, i) =>
        tensor(values, fixture.shapes[i], { requiresGrad: true }),
      );
      const secondOptimizer = makeOptimizer(kind, second, { lr: 123 });
      secondOptimizer.loadStateDict(saved);
      expect(secondOptimizer.lr).toBe(options.lr);
      expect(secondOptimizer.stateDict().steps).toEqual(saved.steps);
      for (let step = 3; step < steps; step++) {
        setGradients(second, step);
        secondOptimizer.step();
      }
      const resumed = await snapshot(second);
      resumed.forEach((values, i) => {
        expect(Array.from(values), `parameter ${i}`).toEqual(
          Array.from(expected[i]),
        );
      });

      for (const t of saved.tensors.values()) t.dispose();
      for (const o of [straightOptimizer, firstOptimizer, secondOptimizer]) {
        o.zeroGrad();
        o.dispose();
      }
      for (const p of [...straight, ...first, ...second]) p.dispose();
    });
  }

  it('stateDict names moments by parameter index', () => {
    const params = makeParams();
    const optimizer = new Adam(params, { amsgrad: true });
    setGradients(params, skippedStep);
    optimizer.step();
    const state = optimizer.stateDict();
    expect([...state.tensors.keys()]).toEqual([
      '0.exp_avg',
      '0.exp_avg_sq',
      '0.max_exp_avg_sq',
    ]);
    expect(state.steps).toEqual([1, 0]);
    expect(state.options).toEqual({
      lr: 1e-3,
      betas: [0.9, 0.999],
      eps: 1e-8,
      weightDecay: 0,
      amsgrad: true,
    });
    for (const t of state.tensors.values()) t.dispose();
    optimizer.zeroGrad();
    optimizer.dispose();
    for (const p of params) p.dispose();
  });

  it('loadStateDict names missing and mismatched keys', () => {
    const params = makeParams();
    const optimizer = new Adam(params);
    const wrong = tensor([1, 2], [2]);
    expect(() =>
      optimizer.loadStateDict({
        options: optimizer.options(),
        steps: [1, 0],
        tensors: new Map([
          ['0.exp_avg', wrong],
          ['1.exp_avg', wrong],
        ]),
      }),
    ).toThrow(
      'Adam.loadStateDict: missing keys 0.exp_avg_sq; unexpected keys ' +
        '1.exp_avg; shape mismatch for 0.exp_avg (state [2], parameter ' +
        '[3,5]). Nothing was loaded.',
    );
    expect(optimizer.stateDict().steps).toEqual([0, 0]);
    expect(() =>
      optimizer.loadStateDict({
        options: optimizer.options(),
        steps: [0],
        tensors: new Map(),
      }),
    ).toThrow(
      'Adam.loadStateDict: the state has 1 parameters, this optimiser has 2',
    );
    wrong.dispose();
    optimizer.dispose();
    for (const p of params) p.dispose();
  });
});

describe('optimiser errors', () => {
  it('rejects bad options with the optimiser name', () => {
    const p = tensor([1], [1], { requiresGrad: true });
    expect(() => new Adam([p], { lr: -1 })).toThrow(
      'Adam: lr must be a finite number >= 0, got -1',
    );
    expect(() => new Adam([p], { betas: [0.9, 1] })).toThrow(
      'Adam: betas[1] must be in [0, 1), got 1',
    );
    expect(() => new SGD([p], { lr: 0.1, nesterov: true })).toThrow(
      'SGD: nesterov needs momentum > 0 and dampening 0, got momentum 0 ' +
        'and dampening 0',
    );
    expect(() => new SGD([], { lr: 0.1 })).toThrow(
      'SGD: the parameter list is empty',
    );
    expect(() => new SGD([p, p], { lr: 0.1 })).toThrow(
      'SGD: parameter 1 appears more than once',
    );
    p.dispose();
  });

  it('rejects a non-leaf parameter', () => {
    const p = tensor([1, 2], [2], { requiresGrad: true });
    const q = mul(p, p);
    expect(() => new SGD([q], { lr: 0.1 })).toThrow(
      'SGD: parameter 0 of shape [2] is not a leaf tensor with requiresGrad ' +
        'true',
    );
    q.dispose();
    p.dispose();
  });

  it('rejects a gradient of the wrong shape', () => {
    const p = tensor([1, 2, 3], [3], { requiresGrad: true });
    p.grad = tensor([1, 2], [2]);
    const optimizer = new SGD([p], { lr: 0.1 });
    expect(() => optimizer.step()).toThrow(
      'SGD.step: the gradient of parameter 0 has shape [2], expected the ' +
        "parameter's [3]",
    );
    p.dispose();
  });

  it('step before backward of an older graph is detected', () => {
    const p = tensor([1, 2, 3], [3], { requiresGrad: true });
    const x = tensor([4, 5, 6], [3]);
    const optimizer = new SGD([p], { lr: 0.1 });
    p.grad = tensor([1, 1, 1], [3]);
    // mul saves p's storage for its backward; the step then writes it.
    const loss = tidy(() => sum(mul(p, x)));
    optimizer.step();
    expect(() => loss.backward()).toThrow(
      'backward: a tensor of shape [3] saved by mul was modified in place ' +
        'after the forward pass (version 1, saved at 0)',
    );
    loss.dispose();
    x.dispose();
    p.dispose();
  });
});

describe('emaUpdate', () => {
  it('mixes target and source in place', async () => {
    const target = [tensor([1, 2, 3], [3]), tensor([10, -4], [2, 1])];
    const source = [tensor([3, 2, -1], [3]), tensor([0, 4], [2, 1])];
    const handle = target[0].share();
    emaUpdate(target, source, 0.75);
    // 0.75 * t + 0.25 * s, computed by hand.
    expect(Array.from(await target[0].toArray())).toEqual([1.5, 2, 2]);
    expect(Array.from(await target[1].toArray())).toEqual([7.5, -2]);
    // The update wrote the target's own storage, so other handles see it.
    expect(Array.from(await handle.toArray())).toEqual([1.5, 2, 2]);
    expect(Array.from(await source[0].toArray())).toEqual([3, 2, -1]);
    emaUpdate(target, source, 0.5);
    expect(Array.from(await target[1].toArray())).toEqual([3.75, 1]);
    for (const t of [...target, ...source, handle]) t.dispose();
  });

  it('alpha 0.99 matches the float32 formula', async () => {
    const values = [0.3, -1.7, 2.25, 1e-3, -40];
    const sources = [1.1, 0.4, -2, 5e-3, 12];
    const target = [tensor(values, [5])];
    const source = [tensor(sources, [5])];
    emaUpdate(target, source, 0.99);
    const f = Math.fround;
    const expected = values.map((t, i) =>
      f(f(f(t) * f(0.99)) + f(f(1 - 0.99) * f(sources[i]))),
    );
    expectClose(await target[0].toArray(), expected, 1e-6, 0, 'ema 0.99');
    for (const t of [...target, ...source]) t.dispose();
  });

  it('names the index and shapes of a mismatch', async () => {
    const target = [tensor([1, 2], [2]), tensor([1, 2, 3, 4], [2, 2])];
    const source = [tensor([1, 2], [2]), tensor([1, 2, 3, 4], [4])];
    expect(() => emaUpdate(target, source, 0.9)).toThrow(
      'emaUpdate: target 1 has shape [2,2] but source 1 has shape [4]',
    );
    // Nothing was updated, not even the matching first pair.
    expect(Array.from(await target[0].toArray())).toEqual([1, 2]);
    expect(() => emaUpdate(target, source.slice(0, 1), 0.9)).toThrow(
      'emaUpdate: 2 target tensors but 1 source tensors',
    );
    const first = target.slice(0, 1);
    expect(() => emaUpdate(first, first, 0.9)).toThrow(
      'emaUpdate: target 0 and source 0 share storage',
    );
    expect(() => emaUpdate([], [], 1.5)).toThrow(
      'emaUpdate: alpha must be in [0, 1], got 1.5',
    );
    for (const t of [...target, ...source]) t.dispose();
  });

  it('keeps no tensors alive', () => {
    const target = [tensor([1, 2], [2])];
    const source = [tensor([3, 4], [2])];
    const before = liveTensorCount();
    emaUpdate(target, source, 0.9);
    expect(liveTensorCount()).toBe(before);
    for (const t of [...target, ...source]) t.dispose();
  });
});
