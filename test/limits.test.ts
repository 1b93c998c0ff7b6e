// Device limits: grids past 65,535 workgroups per dimension and tensors past
// maxStorageBufferBindingSize. The large cases use 2^24 + 3 elements (64 MiB
// per tensor). That is past 2^24, where float32 stops representing every
// integer, and at 64 invocations per workgroup it takes 262,145 workgroups,
// folded into rows of 65,535.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  add,
  deviceInfo,
  exp,
  foldGrid,
  kernelOptions,
  liveTensorCount,
  neg,
  sum,
  sync,
  tensor,
  where,
  zeros,
  type Tensor,
} from '../src/index.js';
import { workgroupsFor } from '../src/kernels/launch.js';
import { runOptions } from '../src/kernels/runs.js';
import { device } from './helpers.js';

beforeAll(device);

const COUNT = 2 ** 24 + 3;
const WORKGROUP_SIZE = 64;

// Small integers whose float32 sums and partial sums are exact: a repeating
// -1, 0, 1 pattern with distinct values in the last three elements, so a
// dropped or misplaced tail element changes every result checked below.
function patternValues(): Float32Array {
  const values = new Float32Array(COUNT);
  for (let i = 0; i < COUNT; i++) values[i] = (i % 3) - 1;
  values[COUNT - 3] = 3;
  values[COUNT - 2] = 5;
  values[COUNT - 1] = 7;
  return values;
}

function firstMismatch(got: Float32Array, expected: Float32Array): string {
  for (let i = 0; i < expected.length; i++) {
    if (got[i] !== expected[i]) return `index ${i}: got ${got[i]}, expected ${expected[i]}`;
  }
  return 'none';
}

describe('folded grids', () => {
  let savedWorkgroupSize = 0;
  let savedRun: typeof runOptions.elementsPerInvocation = 'auto';
  let values: Float32Array;
  let x: Tensor;

  beforeAll(() => {
    savedWorkgroupSize = kernelOptions.workgroupSize;
    kernelOptions.workgroupSize = WORKGROUP_SIZE;
    // One element per invocation, as on a GPU: CPU adapters otherwise give
    // each invocation a run of elements and the grid would not need folding.
    savedRun = runOptions.elementsPerInvocation;
    runOptions.elementsPerInvocation = 1;
    values = patternValues();
    x = tensor(values, [COUNT]);
  });

  afterAll(() => {
    kernelOptions.workgroupSize = savedWorkgroupSize;
    runOptions.elementsPerInvocation = savedRun;
    x.dispose();
  });

  it('grid of 2^24 + 3 elements is folded', () => {
    // A spec without its own workgroup size, like the elementwise kernels.
    const workgroups = workgroupsFor({ name: 'binary', uniforms: [], bindings: [] }, COUNT);
    const limit = deviceInfo().limits.maxComputeWorkgroupsPerDimension;
    expect(workgroups).toBe(Math.ceil(COUNT / WORKGROUP_SIZE));
    expect(workgroups).toBeGreaterThan(65535);
    expect(workgroups).toBeGreaterThan(limit);
    const [gridX, gridY] = foldGrid(workgroups, limit);
    expect(gridX).toBeLessThanOrEqual(limit);
    expect(gridY).toBeGreaterThan(1);
  });

  it('add computes the last elements', async () => {
    const out = add(x, x);
    const got = await out.toArray();
    out.dispose();
    const expected = values.map((v) => 2 * v);
    expect(got.length).toBe(COUNT);
    expect(Array.from(got.subarray(COUNT - 3))).toEqual([6, 10, 14]);
    // The element just below 2^24 and the first element of each folded row.
    expect(got[2 ** 24 - 1]).toBe(expected[2 ** 24 - 1]);
    const rowElements = 65535 * WORKGROUP_SIZE;
    for (let row = 1; row * rowElements < COUNT; row++) {
      expect(got[row * rowElements], `first element of row ${row}`).toBe(expected[row * rowElements]);
    }
    expect(firstMismatch(got, expected)).toBe('none');
  });

  it('neg computes the last elements', async () => {
    const out = neg(x);
    const got = await out.toArray();
    out.dispose();
    expect(Array.from(got.subarray(COUNT - 3))).toEqual([-3, -5, -7]);
    expect(firstMismatch(got, values.map((v) => -v))).toBe('none');
  });

  it('sum over all elements includes the tail', async () => {
    let expected = 0;
    for (let i = 0; i < COUNT; i++) expected += values[i];
    const total = sum(x);
    expect(total.shape).toEqual([]);
    // Every partial sum is a small integer, so float32 is exact here.
    expect(await total.item()).toBe(expected);
    total.dispose();
  });
});

describe('binding size limit', () => {
  it('tensor over the limit is rejected', async (context) => {
    const limit = deviceInfo().limits.maxStorageBufferBindingSize;
    // A tensor past the binding limit must still fit in one buffer. It does
    // not on SwiftShader (Chromium 156), whose maxBufferSize equals its
    // maxStorageBufferBindingSize of 1 GiB; lavapipe allows 4 GiB buffers.
    const maxBuffer = deviceInfo().limits.maxBufferSize;
    if (maxBuffer < limit + 64) {
      context.skip(
        `maxBufferSize ${maxBuffer} leaves no room past the binding limit ${limit}`,
      );
    }
    // 33,554,432 + 16 floats for the 128 MiB limit of lavapipe.
    const count = limit / 4 + 16;
    const bytes = count * 4;
    const big = zeros([count]);
    // Elementwise ops free the output they allocated when the launch
    // throws; the reduction is only checked for its message.
    const ops: [string, () => Tensor, boolean][] = [
      ['add', () => add(big, 1), true],
      ['exp', () => exp(big), true],
      ['where', () => where(big, 1, 0), true],
      ['sum', () => sum(big), false],
    ];
    for (const [name, run, checkLeaks] of ops) {
      const before = liveTensorCount();
      let message = '';
      try {
        const out = run();
        // Never reached unless the op accepted the tensor; show what it made.
        message = `${name} returned a tensor of shape [${out.shape.join(',')}]`;
        out.dispose();
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message, name).toMatch(new RegExp(`^${name}`));
      expect(message, name).toContain(String(bytes));
      expect(message, name).toContain(String(limit));
      if (checkLeaks) expect(liveTensorCount(), `${name} live tensors`).toBe(before);
    }
    big.dispose();
    await sync();
  });
});
