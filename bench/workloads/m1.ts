// M1: matmul 1024 x 1024 x 1024. Arithmetic bound: 2 * M * N * K FLOPs.
// Preparation runs the product once and waits for the background autotune
// of its shape class, so the timed runs use the tuned kernel variant.

import { matmul, matmulTuningSettled, randn, sync, tunedVariants } from '../../src/index.js';
import type { Workload } from '../harness.js';

const SIZE = 1024;

export const m1: Workload = {
  name: 'M1',
  summary: 'matmul [1024,1024] x [1024,1024]',
  iterations: 8,
  timeMs: 1000,
  warmupIterations: 1,
  async prepare() {
    const a = randn([SIZE, SIZE], 3);
    const b = randn([SIZE, SIZE], 4);
    matmul(a, b).dispose();
    await sync();
    await matmulTuningSettled();
    for (const [shapeClass, variant] of tunedVariants()) {
      console.log(`  matmul variant for ${shapeClass}: ${variant}`);
    }
    return {
      run: async () => {
        const out = matmul(a, b);
        await sync();
        out.dispose();
      },
      flops: 2 * SIZE * SIZE * SIZE,
      dispose: () => {
        a.dispose();
        b.dispose();
      },
    };
  },
};
