// Self-check of the runtime: trains a tiny MLP (Linear, ReLU, Linear) with
// Adam on a toy regression, all on the device, and prints the loss
// falling. Exits with status 1 when the loss does not fall. Run by
// `npm run selfcheck` and by the setup script until the main job exists.

import {
  Adam,
  mean,
  mul,
  nn,
  ready,
  relu,
  sub,
  tensor,
  tidy,
  type Tensor,
} from './index.js';

const SAMPLES = 256;
const HIDDEN = 32;
const STEPS = 300;
const REPORT_EVERY = 50;
// The final loss must be below this fraction of the first one.
const REQUIRED_DROP = 0.1;

class TinyMlp extends nn.Module {
  readonly hidden: nn.Linear;
  readonly output: nn.Linear;

  constructor() {
    super();
    this.hidden = this.module('hidden', new nn.Linear(1, HIDDEN, { seed: 1 }));
    this.output = this.module('output', new nn.Linear(HIDDEN, 1, { seed: 2 }));
  }

  forward(x: Tensor): Tensor {
    return this.output.forward(relu(this.hidden.forward(x)));
  }
}

/** Returns inputs evenly spaced in [-1, 1] and the targets y = sin(3x). */
function toyData(): { x: Tensor; y: Tensor } {
  const xs = new Float32Array(SAMPLES);
  const ys = new Float32Array(SAMPLES);
  for (let i = 0; i < SAMPLES; i++) {
    xs[i] = -1 + (2 * i) / (SAMPLES - 1);
    ys[i] = Math.sin(3 * xs[i]);
  }
  return { x: tensor(xs, [SAMPLES, 1]), y: tensor(ys, [SAMPLES, 1]) };
}

async function main(): Promise<void> {
  const info = await ready();
  console.log(`selfcheck: adapter ${info.adapter}`);
  const model = new TinyMlp();
  console.log(
    `selfcheck: MLP 1-${HIDDEN}-1 with ${model.parameterCount()} ` +
      `parameters, Adam lr 1e-2, ${SAMPLES} samples of y = sin(3x)`,
  );
  const optimizer = new Adam(model.parameters(), { lr: 1e-2 });
  const { x, y } = toyData();
  let first = NaN;
  let last = NaN;
  for (let step = 0; step <= STEPS; step++) {
    const loss = tidy(() => {
      const error = sub(model.forward(x), y);
      return mean(mul(error, error));
    });
    if (step % REPORT_EVERY === 0) {
      // Reading the loss back is the slow path, so only every few steps.
      last = await loss.item();
      if (step === 0) first = last;
      console.log(`step ${String(step).padStart(3)}  loss ${last.toFixed(6)}`);
    }
    if (step < STEPS) {
      optimizer.zeroGrad();
      loss.backward();
      optimizer.step();
    }
    loss.dispose();
  }
  if (!(last < first * REQUIRED_DROP)) {
    console.error(
      `selfcheck: FAILED, the loss went from ${first} to ${last}, ` +
        `expected below ${REQUIRED_DROP} of the start`,
    );
    process.exit(1);
  }
  console.log(
    `selfcheck: ok, loss fell from ${first.toFixed(6)} to ${last.toFixed(6)}`,
  );
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
