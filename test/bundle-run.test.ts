// The built browser bundle (dist/browser/rrl-medsam.js), not the sources,
// runs in Chromium: it finds navigator.gpu, runs kernels and autograd, and
// matches the float64 references. browser-bundle-setup.ts builds it first.

import { beforeAll, describe, expect, it } from 'vitest';
import type * as Library from '../src/index.js';
import { conv3dRef, type ConvParams } from '../src/reference/conv.js';
import { matmulRef } from '../src/reference/matmul.js';
import type { NDArray } from '../src/reference/ndarray.js';
import { isNode } from './environment.js';
import { expectClose, randomValues } from './helpers.js';

// Served by vitest's browser server from the repository root. A variable
// keeps vite and TypeScript from resolving it at build time, before
// browser-bundle-setup.ts has written the file.
const BUNDLE_URL = '/dist/browser/rrl-medsam.js';

let lib: typeof Library;

const X_SHAPE = [1, 2, 3, 5, 7];
const W_SHAPE = [3, 2, 3, 3, 3];
const PADDING_1: ConvParams = {
  stride: [1, 1, 1],
  padding: [1, 1, 1],
  dilation: [1, 1, 1],
};

// The bundle's only WebGPU entry point is navigator.gpu, which Node lacks,
// so in the node project it could not acquire a device.
describe.skipIf(isNode)('browser bundle in Chromium', () => {
  beforeAll(async () => {
    lib = (await import(/* @vite-ignore */ BUNDLE_URL)) as typeof Library;
    await lib.ready();
  });

  it('bundle acquires a device', async () => {
    const info = lib.deviceInfo();
    expect(info.adapter.length).toBeGreaterThan(0);
    expect(info.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
    // A separate copy of the runtime, not the sources under test elsewhere.
    const sources = await import('../src/index.js');
    expect(lib.Tensor).not.toBe(sources.Tensor);
  });

  it('bundle matmul matches reference', async () => {
    const a = randomValues([5, 7], 11);
    const b = randomValues([7, 3], 12);
    const product = lib.matmul(
      lib.tensor(Float32Array.from(a), [5, 7]),
      lib.tensor(Float32Array.from(b), [7, 3]),
    );
    const ref = matmulRef({ shape: [5, 7], data: a }, { shape: [7, 3], data: b });
    // Sums of 7 products: rtol 1e-5 of the largest output.
    expectClose(await product.toArray(), ref.data, 1e-5, 1e-6);
  });

  it('bundle conv3d matches reference', async () => {
    const x = randomValues(X_SHAPE, 21);
    const weight = randomValues(W_SHAPE, 22);
    const out = lib.conv3d(
      lib.tensor(Float32Array.from(x), X_SHAPE),
      lib.tensor(Float32Array.from(weight), W_SHAPE),
      null,
      { padding: 1 },
    );
    const ref = conv3dRef(
      { shape: X_SHAPE, data: x },
      { shape: W_SHAPE, data: weight },
      null,
      PADDING_1,
    );
    expect(out.shape).toEqual(ref.shape);
    // Sums of 54 products: rtol 1e-5 of the largest output.
    expectClose(await out.toArray(), ref.data, 1e-5, 1e-6);
  });

  it('bundle conv3d passes gradCheck', async () => {
    const result = await lib.gradCheck(
      (x, w) => lib.conv3d(x, w, null, { padding: 1 }),
      (x: NDArray, w: NDArray) => conv3dRef(x, w, null, PADDING_1),
      [{ shape: X_SHAPE }, { shape: W_SHAPE }],
      { rtol: 1e-3, atol: 1e-4 },
    );
    expect(result.ok, result.report).toBe(true);
  });
});
