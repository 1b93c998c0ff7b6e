// W1 and W2: conv3d on x [1, 16, 64, 64, 64] with 16 output channels,
// kernel 3, padding 1. W1 is the forward pass; W2 the backward pass to the
// input and the weight (no bias), given the output gradient. Arithmetic
// bound: the forward is 2 * N * Cout * Cin * 27 * D * H * W FLOPs, and each
// of the two gradients costs as much again.

import { backward, conv3d, randn, sync, type Tensor } from '../../src/index.js';
import type { Workload } from '../harness.js';

export const CONV_INPUT = [1, 16, 64, 64, 64] as const;
export const CONV_WEIGHT = [16, 16, 3, 3, 3] as const;
const FORWARD_FLOPS =
  2 * CONV_WEIGHT[0] * CONV_WEIGHT[1] * 27 * CONV_INPUT[2] * CONV_INPUT[3] * CONV_INPUT[4];

export const w1: Workload = {
  name: 'W1',
  summary: 'conv3d forward, x [1,16,64,64,64], weight [16,16,3,3,3], padding 1',
  iterations: 5,
  timeMs: 1000,
  warmupIterations: 1,
  async prepare() {
    const x = randn(CONV_INPUT, 11);
    const weight = randn(CONV_WEIGHT, 12);
    return {
      run: async () => {
        const out = conv3d(x, weight, null, { padding: 1 });
        await sync();
        out.dispose();
      },
      flops: FORWARD_FLOPS,
      dispose: () => {
        x.dispose();
        weight.dispose();
      },
    };
  },
};

export const w2: Workload = {
  name: 'W2',
  summary: 'conv3d backward to input and weight of W1, given the output gradient',
  iterations: 5,
  timeMs: 1000,
  warmupIterations: 1,
  async prepare() {
    const x = randn(CONV_INPUT, 11, { requiresGrad: true });
    const weight = randn(CONV_WEIGHT, 12, { requiresGrad: true });
    const gradient = randn([1, 16, 64, 64, 64], 13);
    let out: Tensor | null = null;
    const forward = async () => {
      out = conv3d(x, weight, null, { padding: 1 });
      await sync();
    };
    const clear = () => {
      out?.dispose();
      out = null;
      for (const t of [x, weight]) {
        t.grad?.dispose();
        t.grad = null;
      }
    };
    return {
      // The forward pass runs untimed before each run.
      beforeEach: forward,
      run: async () => {
        backward(out!, gradient);
        await sync();
        clear();
      },
      flops: 2 * FORWARD_FLOPS,
      dispose: () => {
        clear();
        x.dispose();
        weight.dispose();
        gradient.dispose();
      },
    };
  },
};
