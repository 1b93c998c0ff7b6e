// Compare segmentation decoders on the embedded IXI split:
// `npx tsx bench/segmentation-variants.ts [--steps 300] [--variant NAME]...`.
//
// Each variant trains f_med and one segmentation decoder alone, on the five
// training scans, with the atlas's structure labels as fixed pseudo labels:
// after the affine pre-alignment they are what the registration branch
// starts from. Scan and labels are augmented together by `train`'s
// transform, and the loss is L_seg (soft Dice over the 43 classes, plus the
// variant's cross-entropy weight), Adam at 1e-3, cpu preset encoder, 64^3.
// No registration, EMA or prompt, so what shows is how fast the decoder
// learns to segment, apart from the pseudo labels' quality.
//
// After training, the argmax of the probabilities is scored against each
// scan's true structures (mean Dice over the 42 structures, background
// left out) on the four held-out and the five training scans. The first
// row scores the pseudo labels themselves (the unwarped atlas structures).
//
// Timings are only comparable on an otherwise idle machine.

import { noGrad } from '../src/autograd/node.js';
import { ready } from '../src/index.js';
import { Module } from '../src/nn/module.js';
import { Encoder3d, rrlConfig, SegmentationDecoder, type RrlModelConfig } from '../src/nn/rrl/index.js';
import { argmax } from '../src/ops/reduce.js';
import { oneHot } from '../src/ops/dice.js';
import { Adam } from '../src/optim/adam.js';
import { keep, tidy, type Tensor } from '../src/tensor.js';
import { augment } from '../src/pipeline/augment.js';
import { TRAINING_AUGMENTATION } from '../src/cli/train.js';
import { segmentationLoss } from '../src/pipeline/train/losses.js';
import { runMain } from '../scripts/run-main.js';
import { atlasGridTensor, meanDice, parseVariantArguments,
  variantUsage, prepareSplit, type Scored, type Split } from './ixi-split.js';

interface Variant {
  /** Segmentation decoder fields over the cpu preset. */
  config: Partial<RrlModelConfig>;
  /** Weight of the cross-entropy added to the Dice loss. */
  crossEntropy: number;
  /** Adam's learning rate (default 1e-3, as in the RRL-MedSAM paper). */
  lr?: number;
}

function decoder(widths: number[], convs: 1 | 2, level: 0 | 1, crossEntropy = 0, lr?: number): Variant {
  return {
    config: { segmentationChannels: widths, segmentationConvs: convs, segmentationLevel: level },
    crossEntropy,
    lr,
  };
}

const VARIANTS: Record<string, Variant> = {
  // The earlier cpu preset's decoder.
  'full-grid-4': decoder([4, 4, 8, 16], 1, 0),
  'full-grid-4-ce': decoder([4, 4, 8, 16], 1, 0, 1),
  'full-grid-4-lr-3e-3': decoder([4, 4, 8, 16], 1, 0, 0, 3e-3),
  'full-grid-8': decoder([8, 8, 16, 32], 1, 0),
  'full-grid-16': decoder([16, 16, 32, 32], 1, 0),
  // The cpu preset's decoder.
  'half-grid-16': decoder([16, 16, 16, 16], 1, 1),
  'half-grid-16-lr-3e-3': decoder([16, 16, 16, 16], 1, 1, 0, 3e-3),
  'half-grid-16-lr-1e-2': decoder([16, 16, 16, 16], 1, 1, 0, 1e-2),
  'half-grid-24': decoder([24, 24, 24, 24], 1, 1),
  'half-grid-24-lr-3e-3': decoder([24, 24, 24, 24], 1, 1, 0, 3e-3),
  'half-grid-32': decoder([32, 32, 32, 32], 1, 1),
  // 32 channels on the 32^3 grid only, 16 on the coarser levels.
  'half-grid-32-16': decoder([16, 32, 16, 16], 1, 1),
  'half-grid-32x2': decoder([32, 32, 32, 32], 2, 1),
};

class SegmentationOnly extends Module {
  readonly encoder: Encoder3d;
  readonly decoder: SegmentationDecoder;

  constructor(config: RrlModelConfig) {
    super();
    this.encoder = this.module('encoder', new Encoder3d(config, config.seed));
    this.decoder = this.module('decoder', new SegmentationDecoder(config, config.seed + 1));
  }

  forward(image: Tensor): Tensor {
    return tidy(() => this.decoder.forward(this.encoder.forward(image)));
  }
}

interface Scores {
  test: number;
  train: number;
}

/** Returns the mean structure Dice of `labelsOf(scan)` over the test and training scans. */
async function score(split: Split, labelsOf: (scan: Scored) => Promise<ArrayLike<number>>): Promise<Scores> {
  const ids = Array.from({ length: split.numClasses - 1 }, (_, index) => index + 1);
  const over = async (scans: readonly Scored[]) => {
    const maps: ArrayLike<number>[] = [];
    for (const scan of scans) maps.push(await labelsOf(scan));
    return meanDice(maps, scans.map((scan) => scan.structures), ids);
  };
  return { test: await over(split.test), train: await over(split.train) };
}

async function runVariant(split: Split, name: string, steps: number): Promise<Scores & { secondsPerIteration: number }> {
  const variant = VARIANTS[name];
  const config = rrlConfig({ preset: 'cpu', numClasses: split.numClasses, ...variant.config });
  const model = new SegmentationOnly(config);
  const optimizer = new Adam(model.parameters(), { lr: variant.lr ?? 1e-3 });
  const atlasLabels = keep(atlasGridTensor(split, split.atlasStructures));
  const weights = { segmentationCrossEntropy: variant.crossEntropy };
  const started = performance.now();
  for (let iteration = 0; iteration < steps; iteration++) {
    const scan = split.train[iteration % split.train.length];
    const loss = tidy(() => {
      optimizer.zeroGrad();
      const moved = augment(scan.image, atlasLabels, { ...TRAINING_AUGMENTATION, seed: 0, step: iteration });
      moved.flow.dispose();
      const pseudoLabel = oneHot(moved.labels!, split.numClasses);
      const total = segmentationLoss(model.forward(moved.image), pseudoLabel, { diceExcludeBackground: false, weights });
      total.backward();
      optimizer.step();
      optimizer.zeroGrad();
      return total;
    });
    if ((iteration + 1) % 50 === 0 || iteration + 1 === steps) {
      // item() waits for the queued iterations, so the time covers their work.
      const value = await loss.item();
      const seconds = (performance.now() - started) / 1000 / (iteration + 1);
      console.log(`${name} ${iteration + 1}/${steps}: L_seg ${value.toFixed(4)}, ${seconds.toFixed(2)} s/iteration`);
    }
    loss.dispose();
  }
  const secondsPerIteration = (performance.now() - started) / 1000 / steps;
  const segment = async (scan: Scored) => {
    const ids = noGrad(() => tidy(() => argmax(model.forward(scan.image), 1)));
    const values = await ids.toArray();
    ids.dispose();
    return values;
  };
  const scores = await score(split, segment);
  atlasLabels.dispose();
  optimizer.dispose();
  model.dispose();
  return { ...scores, secondsPerIteration };
}

async function main(): Promise<void> {
  const args = parseVariantArguments('segmentation-variants', process.argv.slice(2), Object.keys(VARIANTS));
  await ready();
  const split = await prepareSplit();
  const pseudo = await score(split, async () => split.atlasStructures);
  console.log(
    `${args.steps} iterations; mean Dice over the ${split.numClasses - 1} structures\n` +
      '| variant | s/iteration | test | training |\n| --- | --- | --- | --- |\n' +
      `| pseudo labels (affine atlas) | - | ${pseudo.test.toFixed(3)} | ${pseudo.train.toFixed(3)} |`,
  );
  for (const name of args.variants) {
    const row = await runVariant(split, name, args.steps);
    console.log(`| ${name} | ${row.secondsPerIteration.toFixed(2)} | ${row.test.toFixed(3)} | ${row.train.toFixed(3)} |`);
  }
}

runMain(import.meta.url, main, variantUsage('segmentation-variants', Object.keys(VARIANTS)));
