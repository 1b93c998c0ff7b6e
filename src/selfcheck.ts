// Self-check of the runtime: fits a small model on the device with the
// tape autograd and prints the loss falling. Run by `npm run selfcheck`
// and by the setup script until the main job exists.

import {
  add,
  mean,
  mul,
  noGrad,
  randn,
  ready,
  sub,
  tensor,
  tidy,
  type Tensor,
} from './index.js';
import { scale } from './ops/elementwise.js';

async function main(): Promise<void> {
  const info = await ready();
  console.log(`selfcheck: adapter ${info.adapter}`);
  const count = 4096;
  const x = randn([count, 1], 1);
  // Target: y = 3x - 2 plus a little noise.
  const noise = randn([count, 1], 2);
  const y = tidy(() => add(scale(x, 3), add(scale(noise, 0.05), tensor([-2], [1]))));
  let weight: Tensor = tensor([0], [1], { requiresGrad: true });
  let bias: Tensor = tensor([0], [1], { requiresGrad: true });
  const learningRate = 0.2;
  let first = NaN;
  let last = NaN;
  for (let step = 0; step <= 40; step++) {
    const loss = tidy(() => {
      const error = sub(add(mul(x, weight), bias), y);
      return mean(mul(error, error));
    });
    loss.backward();
    const value = await loss.item();
    loss.dispose();
    if (step === 0) first = value;
    last = value;
    if (step % 10 === 0) console.log(`step ${String(step).padStart(2)}  loss ${value.toFixed(6)}`);
    const next = noGrad(() => tidy(() => [
      sub(weight, scale(weight.grad!, learningRate)),
      sub(bias, scale(bias.grad!, learningRate)),
    ]));
    weight.dispose();
    bias.dispose();
    [weight, bias] = next;
    weight.requiresGrad = true;
    bias.requiresGrad = true;
  }
  const [w, b] = [await weight.item(), await bias.item()];
  console.log(`fitted y = ${w.toFixed(3)} x + ${b.toFixed(3)} (target 3x - 2)`);
  if (!(last < first * 0.01) || Math.abs(w - 3) > 0.05 || Math.abs(b + 2) > 0.05) {
    console.error('selfcheck: FAILED, the loss did not fall as expected');
    process.exit(1);
  }
  console.log('selfcheck: ok');
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
