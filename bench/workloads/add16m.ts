// add16M: elementwise add of two 16M-element tensors. Memory bound: one
// run reads two inputs and writes the output, 3 x 4 bytes per element.

import { add, randn, sync } from '../../src/index.js';
import type { Workload } from '../harness.js';

const ELEMENTS = 16 * 2 ** 20;

export const add16M: Workload = {
  name: 'add16M',
  summary: 'add of two [16M] float32 tensors',
  iterations: 20,
  timeMs: 1000,
  warmupIterations: 3,
  async prepare() {
    const a = randn([ELEMENTS], 1);
    const b = randn([ELEMENTS], 2);
    await sync();
    return {
      run: async () => {
        const out = add(a, b);
        await sync();
        out.dispose();
      },
      bytes: 3 * 4 * ELEMENTS,
      dispose: () => {
        a.dispose();
        b.dispose();
      },
    };
  },
};
