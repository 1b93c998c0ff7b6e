// Times every matmul kernel variant on one product, to see what the
// autotune chooses between on this adapter.
//
// Run: npx tsx bench/matmul-variants.ts [M,N,K] [NN|NT|TN|TT]
// (default 1024,1024,1024 NN). The first run of a variant includes its
// compilation, which on llvmpipe takes seconds; the timed runs do not.

import { ready, randn, sync } from '../src/index.js';
import {
  matmulKernel,
  storedShapes,
  variantName,
  vec4Allowed,
  type MatmulProblem,
} from '../src/kernels/matmul.js';
import { allVariants } from '../src/kernels/tuning.js';
import { medianMs } from './harness.js';

const [m, n, k] = (process.argv[2] ?? '1024,1024,1024').split(',').map(Number);
const flags = process.argv[3] ?? 'NN';
if (![m, n, k].every((size) => Number.isInteger(size) && size > 0) || !/^[NT]{2}$/.test(flags)) {
  console.error('usage: npx tsx bench/matmul-variants.ts [M,N,K] [NN|NT|TN|TT]');
  process.exit(1);
}

const problem: MatmulProblem = {
  m,
  n,
  k,
  transposeA: flags[0] === 'T',
  transposeB: flags[1] === 'T',
  batchShape: [],
  aBatchStrides: [],
  bBatchStrides: [],
};
const info = await ready();
console.log(`adapter: ${info.adapter}`);
console.log(`product: M ${m}, N ${n}, K ${k}, ${flags}, vec4 reads ${vec4Allowed(problem) ? 'allowed' : 'not allowed'}`);

const { aRows, aCols, bRows, bCols } = storedShapes(problem);
const a = randn([aRows, aCols], 1);
const b = randn([bRows, bCols], 2);
const flops = 2 * m * n * k;
for (const variant of allVariants()) {
  if (variant.vec4 && !vec4Allowed(problem)) continue;
  const started = performance.now();
  matmulKernel('variants', variant, problem, a, b).dispose();
  await sync();
  const firstMs = performance.now() - started;
  const ms = await medianMs(
    variantName(variant),
    async () => {
      const out = matmulKernel('variants', variant, problem, a, b);
      await sync();
      out.dispose();
    },
    { iterations: 5, timeMs: 500, warmupIterations: 1 },
  );
  const gflops = flops / (ms / 1000) / 1e9;
  console.log(
    `${variantName(variant).padEnd(30)} ${ms.toFixed(1).padStart(8)} ms ` +
      `${gflops.toFixed(2).padStart(7)} GFLOP/s (first run ${firstMs.toFixed(0)} ms)`,
  );
}
process.exit(0);
