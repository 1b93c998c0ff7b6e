// W4 and W5: the registration losses at the training resolution, forward
// and backward. Both are memory bound, so their bytes are the least a run
// must stream: each input read once and each gradient written once. The
// intermediates the kernels stream on top of that (NCC's five-channel box
// sums above all) show up as a fraction of the ceiling below 100%.

import { backward, nccLoss, randn, smoothnessLoss, sync, type Tensor } from '../../src/index.js';
import type { PreparedWorkload, Workload } from '../harness.js';

const SIZE = 128;

/** Runs loss(inputs) and its backward, then frees the loss and gradients. */
function forwardBackward(inputs: Tensor[], loss: () => Tensor): () => Promise<void> {
  return async () => {
    const value = loss();
    backward(value);
    await sync();
    value.dispose();
    for (const input of inputs) {
      input.grad?.dispose();
      input.grad = null;
    }
  };
}

async function prepared(inputs: Tensor[], loss: () => Tensor): Promise<PreparedWorkload> {
  for (const input of inputs) input.requiresGrad = true;
  const run = forwardBackward(inputs, loss);
  // Compiles the pipelines outside the timed runs.
  await run();
  return {
    run,
    bytes: 2 * inputs.reduce((total, input) => total + input.bytes, 0),
    dispose: () => inputs.forEach((input) => input.dispose()),
  };
}

export const w4: Workload = {
  name: 'W4',
  summary: `nccLoss window 9 forward + backward to both [1,1,${SIZE},${SIZE},${SIZE}] inputs`,
  iterations: 5,
  timeMs: 1000,
  warmupIterations: 1,
  async prepare() {
    const a = randn([1, 1, SIZE, SIZE, SIZE], 41);
    const b = randn([1, 1, SIZE, SIZE, SIZE], 42);
    return prepared([a, b], () => nccLoss(a, b, { window: 9 }));
  },
};

export const w5: Workload = {
  name: 'W5',
  summary: `smoothnessLoss forward + backward of a [1,3,${SIZE},${SIZE},${SIZE}] flow`,
  iterations: 5,
  timeMs: 1000,
  warmupIterations: 1,
  async prepare() {
    const flow = randn([1, 3, SIZE, SIZE, SIZE], 43);
    return prepared([flow], () => smoothnessLoss(flow));
  },
};
