// The adapter request as ready() makes it: one retry after a null adapter
// (headless Chromium's first request after launch sometimes returns null),
// and messages that name the fix for the environment. Runs in both projects;
// each file gets its own worker or iframe, so the replaced navigator.gpu
// affects no other suite.

import { afterEach, describe, expect, it } from 'vitest';
import { NoAdapterError, deviceInfo, ready } from '../src/index.js';
import { gpuEntryPoint } from '../src/device.js';
import { findGpu } from '../src/gpu-entry.js';
import { isBrowser, isNode } from './environment.js';

// The real entry point: navigator.gpu in Chromium, Dawn in Node.
const realGpu = await findGpu();

function installGpu(gpu: GPU | undefined): void {
  if (isBrowser) {
    Object.defineProperty(navigator, 'gpu', { value: gpu, configurable: true });
  } else {
    Object.defineProperty(globalThis, 'navigator', {
      value: { gpu },
      configurable: true,
    });
  }
}

function restoreGpu(): void {
  if (isBrowser) Reflect.deleteProperty(navigator, 'gpu');
  else Reflect.deleteProperty(globalThis, 'navigator');
}

/** An entry point whose first `failures` adapter requests return null. */
function flakyGpu(failures: number): { gpu: GPU; requests: () => number } {
  let requests = 0;
  const gpu = {
    requestAdapter: (options?: GPURequestAdapterOptions) => {
      requests += 1;
      if (requests <= failures) return Promise.resolve(null);
      return realGpu!.requestAdapter(options);
    },
  } as unknown as GPU;
  return { gpu, requests: () => requests };
}

async function failure(): Promise<Error> {
  return ready().then(
    () => {
      throw new Error('ready resolved, expected a NoAdapterError');
    },
    (err: Error) => err,
  );
}

afterEach(restoreGpu);

describe('adapter request', () => {
  it('finds a real entry point', () => {
    expect(realGpu).not.toBeNull();
  });

  // Node has no navigator.gpu to remove: the Node entry point then loads
  // Dawn, which device-errors.test.ts covers.
  it.skipIf(isNode)('missing navigator.gpu names browsers', async () => {
    installGpu(undefined);
    const err = await failure();
    expect(err).toBeInstanceOf(NoAdapterError);
    expect(err.message).toContain('does not expose navigator.gpu');
    expect(err.message).toContain('served over https or from localhost');
  });

  it('null adapter twice fails with the fix', async () => {
    const flaky = flakyGpu(2);
    installGpu(flaky.gpu);
    const err = await failure();
    expect(err).toBeInstanceOf(NoAdapterError);
    expect(flaky.requests()).toBe(2);
    expect(err.message).toContain('no WebGPU adapter found');
    if (isBrowser) {
      expect(err.message).toContain('--enable-unsafe-webgpu');
      expect(err.message).not.toContain('setup:gpu');
    } else {
      expect(err.message).toContain('npm run setup:gpu');
    }
  });

  it('null first adapter is retried once', async () => {
    const flaky = flakyGpu(1);
    installGpu(flaky.gpu);
    const info = await ready();
    expect(flaky.requests()).toBe(2);
    expect(info.adapter.length).toBeGreaterThan(0);
    expect(gpuEntryPoint()).toBe(flaky.gpu);
  });

  // vitest.config.ts pins the browser project to SwiftShader
  // (--use-webgpu-adapter=swiftshader); Node takes the machine's adapter.
  it.runIf(isBrowser)('browser runs on SwiftShader', () => {
    const info = deviceInfo();
    console.log(`browser adapter: ${info.adapter}`);
    expect(info.adapter).toContain('swiftshader');
    expect(info.isFallbackAdapter).toBe(true);
  });
});
