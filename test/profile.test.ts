// The kernel profiler: timestamps per dispatch, replays, and its errors.

import { beforeAll, describe, expect, it } from 'vitest';
import { add, tensor } from '../src/index.js';
import { startKernelProfile, stopKernelProfile } from '../src/kernels/profile.js';
import { device } from './helpers.js';

beforeAll(device);

describe('kernel profile', () => {
  it('profile times each dispatch', async () => {
    const a = tensor([1, 2, 3], [3]);
    const b = tensor([4, 5, 6], [3]);
    await startKernelProfile();
    const sum = add(a, b);
    const timings = await stopKernelProfile({ replays: 2 });
    expect(timings).toHaveLength(1);
    expect(timings[0].kernel).toBe('binary');
    expect(timings[0].label).toBe('add');
    expect(timings[0].workgroups).toBeGreaterThan(0);
    expect(timings[0].ms).toBeGreaterThanOrEqual(0);
    expect(timings[0].cpuMs).toBeGreaterThanOrEqual(0);
    expect(timings.overheadMs).toBeGreaterThanOrEqual(0);
    // The replays must leave the results of the step as they were.
    expect(Array.from(await sum.toArray())).toEqual([5, 7, 9]);
  });

  it('profile without replays has no CPU times', async () => {
    const a = tensor([1, 2], [2]);
    await startKernelProfile();
    add(a, a);
    const timings = await stopKernelProfile();
    expect(timings[0].cpuMs).toBeUndefined();
    expect(timings.overheadMs).toBeUndefined();
  });

  it('profile rejects a second open and a stop without open', async () => {
    await startKernelProfile();
    await expect(startKernelProfile()).rejects.toThrow(
      'startKernelProfile: a profile is already open',
    );
    await stopKernelProfile();
    await expect(stopKernelProfile()).rejects.toThrow('stopKernelProfile: no profile is open');
  });
});
