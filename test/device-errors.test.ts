// Device failures that need a fresh process: no adapter at all, and a lost
// device. Each test file runs in its own forked worker (or iframe in the
// browser project), so replacing navigator.gpu and destroying the device
// here affects no other suite.

import { describe, expect, it } from 'vitest';
import { GpuError, NoAdapterError, ones, ready, sync, tensor } from '../src/index.js';
import { gpuDevice } from '../src/device.js';
import { isBrowser } from './environment.js';

describe('device failures', () => {
  // The browser build names browser settings instead of a driver to install
  // (adapter-request.test.ts checks that message in both projects).
  it.skipIf(isBrowser)('missing adapter names the driver to install', async () => {
    const gpu = { requestAdapter: async () => null } as unknown as GPU;
    Object.defineProperty(globalThis, 'navigator', {
      value: { gpu },
      configurable: true,
    });
    const failure = await ready().then(
      () => null,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(NoAdapterError);
    const message = (failure as Error).message;
    expect(message).toContain('no WebGPU adapter found');
    expect(message).toContain('npm run setup:gpu');
    expect(message).toContain('mesa-vulkan-drivers');
    Reflect.deleteProperty(globalThis, 'navigator');
  });

  it('ready succeeds after a failed attempt', async () => {
    const info = await ready();
    expect(info.adapter.length).toBeGreaterThan(0);
  });

  it('lost device fails later work with GpuError', async () => {
    const t = tensor([1, 2, 3], [3]);
    await sync();
    const device = gpuDevice();
    device.destroy();
    await device.lost;
    expect(() => ones([2])).toThrow(GpuError);
    expect(() => ones([2])).toThrow(/device lost \(destroyed\)/);
    await expect(t.toArray()).rejects.toThrow(GpuError);
  });
});
