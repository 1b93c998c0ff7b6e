// Measures the adapter's ceilings at the start of a benchmark run: peak
// arithmetic with the peak-fma probe kernel, streaming bandwidth with the
// copy probe kernel and with copyBufferToBuffer.

import { gpuDevice } from '../src/device.js';
import { flush, sync, zeros } from '../src/index.js';
import { copyKernel, peakFmaKernel } from '../src/kernels/ceilings.js';
import { medianMs, type Ceilings, type TimingOptions } from './harness.js';

const TIMING: TimingOptions = { iterations: 8, timeMs: 500, warmupIterations: 2 };

/** Elements of each buffer in the bandwidth probes: 64 MiB of float32. */
const STREAM_ELEMENTS = 16 * 2 ** 20;

async function peakGflops(): Promise<number> {
  // 2^18 invocations x 256 rounds: about 2^35 FLOPs, long enough to hide
  // the launch cost even on fast GPUs, a few hundred ms on llvmpipe.
  const out = zeros([4 * 2 ** 18]);
  let flops = 0;
  const ms = await medianMs(
    'peak-fma',
    async () => {
      flops = peakFmaKernel(out, 256);
      await sync();
    },
    TIMING,
  );
  out.dispose();
  return flops / (ms / 1000) / 1e9;
}

async function copyKernelGbps(): Promise<number> {
  const x = zeros([STREAM_ELEMENTS]);
  const out = zeros([STREAM_ELEMENTS]);
  const ms = await medianMs(
    'copy kernel',
    async () => {
      copyKernel(x, out);
      await sync();
    },
    TIMING,
  );
  x.dispose();
  out.dispose();
  return (2 * x.bytes) / (ms / 1000) / 1e9;
}

async function copyBufferGbps(): Promise<number> {
  const x = zeros([STREAM_ELEMENTS]);
  const out = zeros([STREAM_ELEMENTS]);
  flush();
  const device = gpuDevice();
  const ms = await medianMs(
    'copyBufferToBuffer',
    async () => {
      const encoder = device.createCommandEncoder({ label: 'bench copyBufferToBuffer' });
      encoder.copyBufferToBuffer(x.buffer(), 0, out.buffer(), 0, x.bytes);
      device.queue.submit([encoder.finish()]);
      await device.queue.onSubmittedWorkDone();
    },
    TIMING,
  );
  await sync();
  x.dispose();
  out.dispose();
  return (2 * x.bytes) / (ms / 1000) / 1e9;
}

/** Runs the three probes; takes a few seconds on llvmpipe. */
export async function measureCeilings(): Promise<Ceilings> {
  const gflops = await peakGflops();
  const gbps = await copyKernelGbps();
  const copyBufferToBufferGbps = await copyBufferGbps();
  return { gflops, gbps, copyBufferToBufferGbps };
}
