import { beforeAll, describe, expect, it } from 'vitest';
import {
  GpuError,
  add,
  backward,
  deviceInfo,
  foldGrid,
  keep,
  liveTensorCount,
  mean,
  mul,
  ones,
  randn,
  ready,
  reshape,
  sum,
  sync,
  tensor,
  tidy,
  zeros,
  type Tensor,
} from '../src/index.js';
import { launch, type KernelSpec } from '../src/kernels/launch.js';
import { device } from './helpers.js';

beforeAll(device);

describe('device', () => {
  it('ready resolves to adapter name, limits and features', async () => {
    const info = await ready();
    expect(typeof info.adapter).toBe('string');
    expect(info.adapter.length).toBeGreaterThan(0);
    expect(info.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 2 ** 20);
    expect(info.limits.maxComputeInvocationsPerWorkgroup).toBeGreaterThanOrEqual(256);
    expect(info.features).toBeInstanceOf(Set);
  });

  it('ready returns the same device when called twice', async () => {
    const first = await ready();
    const second = await ready();
    expect(second).toBe(first);
  });

  it('invalid dispatch throws at the next wait with the kernel label', async () => {
    const spec: KernelSpec = {
      name: 'fill',
      uniforms: [
        ['size', 'u32'],
        ['value', 'f32'],
      ],
      bindings: [{ name: 'out', access: 'read_write' }],
    };
    const t = zeros([4]);
    const limit = deviceInfo().limits.maxComputeWorkgroupsPerDimension;
    // An unfolded grid past the per-dimension limit is a validation error.
    launch(spec, {
      label: 'deliberately-invalid-fill',
      uniforms: { size: 4, value: 1 },
      buffers: [{ buffer: t.buffer(), bytes: t.bytes }],
      workgroups: limit + 1,
      unfoldedGrid: true,
    });
    const failure = await t.toArray().then(
      () => null,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(GpuError);
    expect(String((failure as Error).message)).toContain('deliberately-invalid-fill');
    // The error is reported once; later work runs normally.
    await sync();
    expect(Array.from(await ones([2]).toArray())).toEqual([1, 1]);
    t.dispose();
  });
});

describe('tensor', () => {
  it('tensor round trip keeps values', async () => {
    const data = [1.5, -2, 3.25, 0, 7, -8];
    const t = tensor(data, [2, 3]);
    expect(Array.from(await t.toArray())).toEqual(data);
    expect(t.shape).toEqual([2, 3]);
    t.dispose();
  });

  it('tensor rejects wrong data length', () => {
    expect(() => tensor([1, 2, 3], [2, 2])).toThrow(/tensor: shape \[2,2\] needs 4 values, got 3/);
  });

  it('tensor rejects a negative dimension', () => {
    expect(() => zeros([2, -1])).toThrow(/non-negative integers/);
  });

  it('zeros and ones fill every element', async () => {
    expect(Array.from(await zeros([5]).toArray())).toEqual([0, 0, 0, 0, 0]);
    expect(Array.from(await ones([3]).toArray())).toEqual([1, 1, 1]);
  });

  it('randn is reproducible from its seed', async () => {
    const a = await randn([1000], 42).toArray();
    const b = await randn([1000], 42).toArray();
    const c = await randn([1000], 43).toArray();
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    const m = a.reduce((s, v) => s + v, 0) / a.length;
    const variance = a.reduce((s, v) => s + (v - m) ** 2, 0) / a.length;
    expect(Math.abs(m)).toBeLessThan(0.1);
    expect(Math.abs(variance - 1)).toBeLessThan(0.1);
  });

  it('reshape shares data and infers -1', async () => {
    const t = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    const r = reshape(t, [3, -1]);
    expect(r.shape).toEqual([3, 2]);
    t.dispose();
    // The view keeps the storage alive after the source is disposed.
    expect(Array.from(await r.toArray())).toEqual([1, 2, 3, 4, 5, 6]);
    r.dispose();
  });

  it('reshape rejects a size mismatch', () => {
    const t = zeros([2, 3]);
    expect(() => reshape(t, [4, 2])).toThrow(/reshape: cannot view a tensor of shape \[2,3\]/);
    t.dispose();
  });

  it('use after dispose names the op and shape', () => {
    const a = zeros([2, 2]);
    const b = zeros([2, 2]);
    a.dispose();
    expect(() => add(a, b)).toThrow(/add: tensor #\d+ of shape \[2,2\] was already disposed/);
    b.dispose();
  });

  it('tidy disposes intermediates and keeps the result', async () => {
    const before = liveTensorCount();
    const x = tensor([1, 2, 3], [3]);
    const y = tidy(() => {
      const doubled = add(x, x);
      return mul(doubled, doubled);
    });
    expect(liveTensorCount()).toBe(before + 2);
    expect(Array.from(await y.toArray())).toEqual([4, 16, 36]);
    x.dispose();
    y.dispose();
    expect(liveTensorCount()).toBe(before);
  });

  it('tidy disposes on a throw', () => {
    const before = liveTensorCount();
    const x = tensor([1, 2, 3], [3]);
    const product: Tensor[] = [];
    expect(() =>
      tidy(() => {
        add(x, x);
        product.push(keep(mul(x, x)));
        throw new Error('failed inside the scope');
      }),
    ).toThrow('failed inside the scope');
    // x was made outside the scope and the product was kept, so both stay.
    expect(liveTensorCount()).toBe(before + 2);
    expect(x.isDisposed).toBe(false);
    expect(product[0].isDisposed).toBe(false);
    x.dispose();
    product[0].dispose();
    expect(liveTensorCount()).toBe(before);
  });
});

describe('grid folding', () => {
  it('foldGrid splits large counts within the limit', () => {
    expect(foldGrid(10, 65535)).toEqual([10, 1, 1]);
    const [x, y, z] = foldGrid(70000, 65535);
    expect(x).toBeLessThanOrEqual(65535);
    expect(x * y * z).toBeGreaterThanOrEqual(70000);
    const big = foldGrid(65535 * 65535 + 5, 65535);
    expect(big[2]).toBe(2);
  });
});

describe('autograd basics', () => {
  it('mul backward gives the other factor', async () => {
    const a = tensor([1, 2, 3], [3], { requiresGrad: true });
    const b = tensor([4, 5, 6], [3], { requiresGrad: true });
    const loss = sum(mul(a, b));
    backward(loss);
    expect(Array.from(await a.grad!.toArray())).toEqual([4, 5, 6]);
    expect(Array.from(await b.grad!.toArray())).toEqual([1, 2, 3]);
  });

  it('gradients accumulate across uses and calls', async () => {
    const a = tensor([1, 2], [2], { requiresGrad: true });
    sum(add(a, a)).backward();
    expect(Array.from(await a.grad!.toArray())).toEqual([2, 2]);
    sum(mul(a, a)).backward();
    expect(Array.from(await a.grad!.toArray())).toEqual([4, 6]);
  });

  it('broadcast backward sums over expanded axes', async () => {
    const a = tensor([1, 2, 3, 4, 5, 6], [2, 3], { requiresGrad: true });
    const bias = tensor([10, 20, 30], [3], { requiresGrad: true });
    mean(add(a, bias)).backward();
    const g = await bias.grad!.toArray();
    Array.from(g).forEach((v) => expect(v).toBeCloseTo(2 / 6, 6));
  });

  it('second backward through a freed graph is an error', () => {
    const a = tensor([1, 2], [2], { requiresGrad: true });
    const y = mul(a, a);
    sum(y).backward();
    expect(() => sum(y).backward()).toThrow(/already freed by backward|already used by an earlier backward/);
  });

  it('backward on a non-scalar needs a gradient', () => {
    const a = tensor([1, 2], [2], { requiresGrad: true });
    expect(() => mul(a, a).backward()).toThrow(/not a scalar/);
  });
});

describe('autograd lifetime', () => {
  it('backward works after tidy disposed the intermediates', async () => {
    const w = tensor([2], [1], { requiresGrad: true });
    const x = tensor([1, 2, 3], [3]);
    const loss = tidy(() => {
      const y = mul(x, w);
      return mean(mul(y, y));
    });
    loss.backward();
    // d/dw mean((x w)^2) = 2 w mean(x^2) = 2 * 2 * 14 / 3
    expect(await w.grad!.item()).toBeCloseTo((4 * 14) / 3, 4);
    loss.dispose();
    x.dispose();
  });

  it('disposing a graph without backward frees its saved tensors', () => {
    const w = tensor([2], [1], { requiresGrad: true });
    const before = liveTensorCount();
    const loss = tidy(() => sum(mul(mul(w, w), w)));
    loss.dispose();
    expect(liveTensorCount()).toBe(before);
    w.dispose();
  });
});
