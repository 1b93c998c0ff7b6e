// Microbenchmarks of the normalisation, pooling and upsampling layers at
// the size of a 3D U-Net's first level, [1, 16, 64, 64, 64] (16 MB).
// Run them with `npx tsx bench/layers.bench.ts`.
//
// Each task records its kernels and waits for the device (sync), so a
// timing covers the GPU work and not only the recording. "backward" tasks
// run the forward pass and backward() with a given upstream gradient.

import { Bench } from 'tinybench';
import {
  avgPool3d,
  backward,
  batchNorm,
  groupNorm,
  instanceNorm,
  layerNormChannels,
  maxPool3d,
  randn,
  ready,
  sync,
  tidy,
  upsample3d,
  type Tensor,
} from '../src/index.js';

const info = await ready();
console.log(`adapter: ${info.adapter}`);

const SHAPE = [1, 16, 64, 64, 64];
const x = randn(SHAPE, 1);
const half = randn([1, 16, 32, 32, 32], 2);
const weight = randn([16], 3);
const bias = randn([16], 4);
await sync();

// Disposing the results inside the task lets the pool hand their buffers
// to the next iteration, as in a training loop.
async function forward(run: (input: Tensor) => Tensor, input = x): Promise<void> {
  tidy(() => {
    run(input).dispose();
  });
  await sync();
}

async function forwardBackward(
  run: (input: Tensor) => Tensor,
  input: Tensor,
  upstream: Tensor,
): Promise<void> {
  tidy(() => {
    input.requiresGrad = true;
    backward(run(input), upstream);
    input.grad?.dispose();
    input.grad = null;
    input.requiresGrad = false;
  });
  await sync();
}

const affine = { weight, bias };
const layers: [string, (input: Tensor) => Tensor, Tensor?][] = [
  ['instanceNorm', (t) => instanceNorm(t, affine)],
  ['groupNorm 4 groups', (t) => groupNorm(t, 4, affine)],
  ['batchNorm training', (t) => batchNorm(t, null, null, { ...affine, training: true })],
  ['layerNormChannels', (t) => layerNormChannels(t, affine)],
  ['maxPool3d k2', (t) => maxPool3d(t, { kernelSize: 2 })],
  ['avgPool3d k3 s2 p1', (t) => avgPool3d(t, { kernelSize: 3, stride: 2, padding: 1 })],
  ['upsample3d linear x2 from 32^3', (t) => upsample3d(t, { scale: 2, mode: 'linear' }), half],
  ['upsample3d nearest x2 from 32^3', (t) => upsample3d(t, { scale: 2 }), half],
];

// tinybench runs each task for `time` ms and at least `iterations` times;
// its default of 64 iterations would take minutes per task here.
const bench = new Bench({
  time: Number(process.env.BENCH_TIME_MS ?? 1000),
  iterations: Number(process.env.BENCH_ITERATIONS ?? 5),
  warmupIterations: 2,
});
for (const [name, run, input = x] of layers) {
  // The upstream gradient is made once: randn draws on the CPU.
  const upstream = randn(tidy(() => [...run(input).shape]), 5);
  bench.add(`${name} forward`, () => forward(run, input));
  bench.add(`${name} backward`, () => forwardBackward(run, input, upstream));
}
await bench.run();
console.table(bench.table());
