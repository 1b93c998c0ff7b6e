// Microbenchmarks of the reductions, softmax and layout copies.
// Run them with `npx tsx bench/reduce.bench.ts`.
//
// Each task records its kernels and waits for the device (sync), so a
// timing covers the GPU work and not only the recording.

import { Bench } from 'tinybench';
import { randn, ready, sync, tidy, type Tensor } from '../src/index.js';
import { reduceOptions } from '../src/kernels/reduce.js';
import { permute } from '../src/ops/layout.js';
import { argmax, max, sum } from '../src/ops/reduce.js';
import { softmax } from '../src/ops/softmax.js';

const info = await ready();
console.log(`adapter: ${info.adapter}`);

const flat = randn([2 ** 24], 1);
const square = randn([4096, 4096], 2);
const scores = randn([1, 36, 48, 48, 48], 3);
const features = randn([2, 16, 32, 32, 32], 4);
await sync();

// Disposing the result inside the task lets the pool hand its buffer to the
// next iteration, as in a training loop; a fresh buffer each time would add
// page faults and zero filling to every timing.
async function timed(run: () => Tensor): Promise<void> {
  tidy(() => {
    run().dispose();
  });
  await sync();
}

const bench = new Bench({ time: 2000, warmupIterations: 2 });
bench
  .add('sum of 2^24 elements', () => timed(() => sum(flat)))
  .add('max of 2^24 elements', () => timed(() => max(flat)))
  .add('sum [4096,4096] over axis 1', () => timed(() => sum(square, 1)))
  .add('sum [4096,4096] over axis 0', () => timed(() => sum(square, 0)))
  .add('sum [2,16,32^3] to channels', () =>
    timed(() => sum(features, [0, 2, 3, 4])),
  )
  .add('softmax [1,36,48^3] over channels', () =>
    timed(() => softmax(scores, 1)),
  )
  .add('argmax [1,36,48^3] over channels', () =>
    timed(() => argmax(scores, 1)),
  )
  .add('permute [2,16,32^3] to channels last', () =>
    timed(() => permute(features, [0, 2, 3, 4, 1])),
  );

for (const rowLayout of ['blocked', 'interleaved'] as const) {
  bench.add(`sum of 2^24 elements, ${rowLayout} rows`, async () => {
    reduceOptions.rowLayout = rowLayout;
    await timed(() => sum(flat));
    reduceOptions.rowLayout = 'auto';
  });
}

await bench.run();
console.table(bench.table());
