// Compare registration decoders on the embedded IXI split:
// `npx tsx bench/registration-variants.ts [--steps 300] [--variant NAME]...`.
//
// Each variant trains f_med and a registration decoder alone, with
// L_reg's image terms (l1 L_smooth + L_sim, l1 = 1 and an NCC window of 9
// unless the variant sets them), Adam at 1e-3 unless the variant sets
// another rate, the paired augmentation of `train`, and the cpu preset's
// encoder at 64^3.
// The other networks of RRL-MedSAM and their losses are left out, so a
// variant costs a third of a demo iteration and its effect on the
// registration shows without the segmentation losses' noise.
//
// After training, the atlas's MUSE parcellation is warped (nearest) onto
// the four held-out scans and the five training scans. The table gives the
// mean Dice over every atlas region and over the 17 large regions of the
// demo's report, with the seconds per iteration. Its affine row scores the
// unwarped atlas after the affine pre-alignment. A variant with instance
// optimisation adds a row per step count, of the held-out scans only.
//
// Timings are only comparable on an otherwise idle machine.

import { noGrad } from '../src/autograd/node.js';
import { ready } from '../src/index.js';
import { Module } from '../src/nn/module.js';
import { Encoder3d, rrlConfig, RegistrationDecoder, type RrlModelConfig } from '../src/nn/rrl/index.js';
import { add, scale } from '../src/ops/elementwise.js';
import { nccLoss } from '../src/ops/ncc.js';
import { smoothnessLoss } from '../src/ops/smoothness.js';
import { composeFlows, warp } from '../src/ops/warp.js';
import { cloneTensor, copyInto } from '../src/nn/copy.js';
import { Adam } from '../src/optim/adam.js';
import { tidy, type Tensor } from '../src/tensor.js';
import { Random } from '../src/random.js';
import { pairedAugmenter, TRAINING_AUGMENTATION } from '../src/cli/train.js';
import type { AugmentOptions } from '../src/pipeline/augment.js';
import { diceScores } from '../src/pipeline/evaluate/dice.js';
import { runMain } from '../scripts/run-main.js';
import { atlasGridTensor, meanOf, parseVariantArguments,
  variantUsage, prepareSplit, type Scored, type Split } from './ixi-split.js';

/** Registration decoder settings of a variant, over the cpu preset. */
type DecoderFields = Pick<
  RrlModelConfig,
  'registrationChannels' | 'registrationConvs' | 'registrationImages' | 'flowLevel'
>;

/** Encoder widths of a variant, in place of the cpu preset's. */
type EncoderFields = Pick<RrlModelConfig, 'encoderChannels'>;

/**
 * A variant: decoder settings, the weight l1 of L_smooth (default 1), the
 * NCC window edge (default 9) and the scaling-and-squaring steps (default
 * 0, a plain displacement).
 */
type Variant = Partial<DecoderFields> & Partial<EncoderFields> & {
  smoothness?: number;
  /** Adam learning rate (default 1e-3). */
  lr?: number;
  nccWindow?: number;
  integrationSteps?: number;
  /** Move atlas and target by train's paired augmentation (default true). */
  augment?: boolean;
  /** Augmentation settings in place of TRAINING_AUGMENTATION. */
  augmentation?: AugmentOptions;
  /**
   * Score with the network applied twice: a second field from the warped
   * atlas to the target, composed with the first (default false).
   */
  twoPass?: boolean;
  /**
   * Training pairs: 'atlas' moves the atlas onto each training scan in
   * turn (default); 'all' draws an ordered pair (moving, fixed) at random
   * from the atlas and the training scans, 30 pairs on the embedded split.
   */
  pairs?: 'atlas' | 'all';
  /**
   * Adam steps on each held-out pair alone before it is warped, from the
   * trained weights (instance optimisation, unsupervised): one row per
   * count, in ascending order, from one run of steps (default none).
   */
  instanceSteps?: number[];
  /** Adam learning rate of the instance optimisation (default: lr). */
  instanceLr?: number;
};

function decoder(
  registrationChannels: number[],
  registrationConvs: 1 | 2,
  registrationImages: boolean,
  flowLevel: 0 | 1,
): DecoderFields {
  return { registrationChannels, registrationConvs, registrationImages, flowLevel };
}

const VARIANTS: Record<string, Variant> = {
  // The cpu preset before the registration decoder had widths of its own.
  'segmentation-widths': decoder([4, 4, 8, 16], 1, false, 0),
  'with-images': decoder([4, 4, 8, 16], 1, true, 0),
  // The cpu preset's decoder.
  cpu: {},
  'half-grid-16': decoder([16, 16, 16, 16], 2, true, 1),
  'full-grid-4': decoder([4, 16, 16, 16], 2, true, 0),
  'full-grid-8': decoder([8, 16, 32, 32], 2, true, 0),
  'full-grid-16': decoder([16, 16, 16, 16], 2, true, 0),
  // The cpu preset's decoder with a weaker smoothness term.
  'cpu-smooth-0.5': { smoothness: 0.5 },
  'cpu-smooth-0.25': { smoothness: 0.25 },
  // The cpu preset's decoder with a smaller NCC window: 9 voxels at 64^3
  // span what 18 do at the default preset's 128^3.
  'cpu-ncc-5': { nccWindow: 5 },
  'cpu-ncc-7': { nccWindow: 7 },
  // The cpu preset's decoder with a diffeomorphic field (VoxelMorph's int_steps 7).
  'cpu-integrate-7': { integrationSteps: 7 },
  'cpu-ncc-5-integrate-7': { nccWindow: 5, integrationSteps: 7 },
  'cpu-lr-3e-3': { lr: 3e-3 },
  // The cpu preset's decoder on the scans as they are, without augmentation.
  'cpu-no-augment': { augment: false },
  // The cpu preset's decoder, scored with a second pass from the warped atlas.
  'cpu-two-pass': { twoPass: true },
  // The cpu preset's decoder with stronger paired augmentation.
  'cpu-augment-strong': {
    augmentation: { ...TRAINING_AUGMENTATION, rotationDeg: 15, scaleRange: [0.85, 1.15], elasticMagnitude: 2 },
  },
  // The cpu preset's decoder with left-right mirroring added.
  'cpu-augment-mirror': { augmentation: { ...TRAINING_AUGMENTATION, mirrorAxes: [2] } },
  // The cpu preset's decoder on a wider encoder: 16 channels at full
  // resolution, as VoxelMorph's first level has.
  'cpu-encoder-16': { encoderChannels: [16, 16, 32, 32, 64] },
  // The cpu preset's decoder trained on every ordered pair of the atlas
  // and the training scans, as VoxelMorph trains scan to scan.
  'cpu-all-pairs': { pairs: 'all' },
  // The cpu preset's decoder, then up to 100 steps on each held-out pair alone.
  'cpu-instance': { instanceSteps: [10, 30, 60, 100] },
  'cpu-instance-lr-3e-3': { instanceSteps: [10, 30, 60, 100], instanceLr: 3e-3 },
};

class RegistrationOnly extends Module {
  readonly encoder: Encoder3d;
  readonly decoder: RegistrationDecoder;

  constructor(config: RrlModelConfig) {
    super();
    const random = new Random(config.seed);
    this.encoder = this.module('encoder', new Encoder3d(config, random));
    this.decoder = this.module('decoder', new RegistrationDecoder(config, random));
  }

  forward(atlas: Tensor, target: Tensor): Tensor {
    return tidy(() =>
      this.decoder.forward(this.encoder.forward(atlas), this.encoder.forward(target), { atlas, target }),
    );
  }
}

interface Row {
  name: string;
  secondsPerIteration: number;
  test: { all: number; large: number };
  /** Null on the rows of instance optimisation, which refine the held-out scans only. */
  train: { all: number; large: number } | null;
}

/** Returns the mean Dice of `regions` warped by `flow` (null: unwarped) against `scan`. */
async function warpedDice(
  split: Split,
  regions: Tensor,
  flow: Tensor | null,
  scan: Scored,
): Promise<{ all: number; large: number }> {
  const warped = noGrad(() => tidy(() => (flow ? warp(regions, flow, { mode: 'nearest' }) : regions.share())));
  const values = await warped.toArray();
  warped.dispose();
  return {
    all: meanOf(diceScores(values, scan.regions, split.codes)),
    large: meanOf(diceScores(values, scan.regions, split.largeCodes)),
  };
}

/** Returns the means of per-scan Dice pairs. */
function meanScores(scores: readonly { all: number; large: number }[]): { all: number; large: number } {
  return { all: meanOf(scores.map((x) => x.all)), large: meanOf(scores.map((x) => x.large)) };
}

/**
 * Returns the mean Dice of the atlas regions warped by `flowOf` over
 * `scans`. A null flow scores the unwarped atlas.
 */
async function score(
  split: Split,
  scans: readonly Scored[],
  flowOf: (target: Tensor) => Tensor | null,
): Promise<{ all: number; large: number }> {
  const scores: { all: number; large: number }[] = [];
  const regions = atlasGridTensor(split, split.atlasRegions);
  try {
    for (const scan of scans) {
      const flow = flowOf(scan.image);
      scores.push(await warpedDice(split, regions, flow, scan));
      flow?.dispose();
    }
  } finally {
    regions.dispose();
  }
  return meanScores(scores);
}

/** Runs one Adam step on L_reg's image terms for `moving` onto `fixed` and returns [L_smooth, L_sim]. */
function trainingStep(
  model: RegistrationOnly,
  optimizer: Adam,
  moving: Tensor,
  fixed: Tensor,
  smoothnessWeight: number,
  nccWindow: number,
): Tensor[] {
  return tidy(() => {
    optimizer.zeroGrad();
    const flow = model.forward(moving, fixed);
    const smoothness = smoothnessLoss(flow);
    const similarity = nccLoss(warp(moving, flow), fixed, { window: nccWindow });
    add(scale(smoothness, smoothnessWeight), similarity).backward();
    optimizer.step();
    optimizer.zeroGrad();
    return [smoothness, similarity];
  });
}

async function runVariant(split: Split, name: string, steps: number): Promise<Row[]> {
  const {
    smoothness: smoothnessWeight = 1,
    nccWindow = 9,
    lr = 1e-3,
    augment: augments = true,
    twoPass = false,
    augmentation = TRAINING_AUGMENTATION,
    pairs = 'atlas',
    instanceSteps = [],
    instanceLr = lr,
    ...fields
  } = VARIANTS[name];
  const config = rrlConfig({ preset: 'cpu', numClasses: 2, ...fields });
  const model = new RegistrationOnly(config);
  const optimizer = new Adam(model.parameters(), { lr });
  const augment = pairedAugmenter(augmentation, 0);
  const random = new Random(0);
  const images = [split.atlas, ...split.train.map((scan) => scan.image)];
  const pairOf = (iteration: number): [Tensor, Tensor] => {
    if (pairs === 'atlas') return [split.atlas, split.train[iteration % split.train.length].image];
    const moving = random.integer(images.length);
    const fixed = (moving + 1 + random.integer(images.length - 1)) % images.length;
    return [images[moving], images[fixed]];
  };
  const started = performance.now();
  for (let iteration = 0; iteration < steps; iteration++) {
    const [moving, fixed] = pairOf(iteration);
    const augmented = (image: Tensor, role: 'atlas' | 'target') =>
      augments ? augment(image, undefined, iteration, { random, role }).image : image;
    const pair = tidy(() => [augmented(moving, 'atlas'), augmented(fixed, 'target')]);
    const losses = trainingStep(model, optimizer, pair[0], pair[1], smoothnessWeight, nccWindow);
    pair.forEach((t) => t.dispose());
    if ((iteration + 1) % 50 === 0 || iteration + 1 === steps) {
      const [smoothness, similarity] = await Promise.all(losses.map((t) => t.item()));
      const seconds = (performance.now() - started) / 1000 / (iteration + 1);
      console.log(
        `${name} ${iteration + 1}/${steps}: L_smooth ${smoothness.toFixed(4)} ` +
          `L_sim ${similarity.toFixed(4)}, ${seconds.toFixed(2)} s/iteration`,
      );
    }
    losses.forEach((t) => t.dispose());
  }
  const secondsPerIteration = (performance.now() - started) / 1000 / steps;
  const fieldOf = (target: Tensor) =>
    noGrad(() =>
      tidy(() => {
        const first = model.forward(split.atlas, target);
        if (!twoPass) return first;
        return composeFlows(first, model.forward(warp(split.atlas, first), target));
      }),
    );
  const rows: Row[] = [
    {
      name,
      secondsPerIteration,
      test: await score(split, split.test, fieldOf),
      train: await score(split, split.train, fieldOf),
    },
  ];
  if (instanceSteps.length > 0) {
    const step = (instance: Adam, target: Tensor) =>
      trainingStep(model, instance, split.atlas, target, smoothnessWeight, nccWindow);
    const refined = await scoreRefined(split, model, instanceSteps, step, instanceLr, fieldOf);
    for (const [index, count] of instanceSteps.entries()) {
      rows.push({ name: `${name}, ${count} steps per scan`, secondsPerIteration, test: refined[index], train: null });
    }
  }
  optimizer.dispose();
  model.dispose();
  return rows;
}

/**
 * Returns the held-out scans' mean Dice after each count of `checkpoints`
 * of instance optimisation steps. Each scan starts from the trained
 * weights with a new Adam state, and the weights are put back after it.
 */
async function scoreRefined(
  split: Split,
  model: RegistrationOnly,
  checkpoints: readonly number[],
  step: (optimizer: Adam, target: Tensor) => Tensor[],
  lr: number,
  fieldOf: (target: Tensor) => Tensor,
): Promise<{ all: number; large: number }[]> {
  const scores = checkpoints.map(() => [] as { all: number; large: number }[]);
  const regions = atlasGridTensor(split, split.atlasRegions);
  for (const scan of split.test) {
    const saved = model.parameters().map((t) => cloneTensor('registration-variants.save', t));
    const optimizer = new Adam(model.parameters(), { lr });
    let done = 0;
    for (const [index, count] of checkpoints.entries()) {
      for (; done < count; done++) step(optimizer, scan.image).forEach((t) => t.dispose());
      const flow = fieldOf(scan.image);
      scores[index].push(await warpedDice(split, regions, flow, scan));
      flow.dispose();
    }
    optimizer.dispose();
    model.parameters().forEach((t, index) => copyInto('registration-variants.restore', t, saved[index]));
    saved.forEach((t) => t.dispose());
  }
  regions.dispose();
  return scores.map(meanScores);
}

async function main(): Promise<void> {
  const args = parseVariantArguments('registration-variants', process.argv.slice(2), Object.keys(VARIANTS));
  await ready();
  const split = await prepareSplit();
  const cells = (result: Pick<Row, 'test' | 'train'>) =>
    [result.test.all, result.test.large, result.train?.all, result.train?.large]
      .map((value) => (value === undefined ? '-' : value.toFixed(3)))
      .join(' | ');
  // Each row is printed as soon as its variant is scored, so a long run
  // that stops early still reports the variants it finished.
  const header =
    `${args.steps} iterations; mean Dice of the warped atlas regions\n` +
    '| variant | s/iteration | test, all regions | test, 17 large | training, all | training, 17 large |\n' +
    '| --- | --- | --- | --- | --- | --- |';
  const unwarped = () => null;
  const affine = { test: await score(split, split.test, unwarped), train: await score(split, split.train, unwarped) };
  console.log(`${header}\n| affine alone | - | ${cells(affine)} |`);
  for (const name of args.variants) {
    for (const row of await runVariant(split, name, args.steps)) {
      console.log(`| ${row.name} | ${row.secondsPerIteration.toFixed(2)} | ${cells(row)} |`);
    }
  }
}

runMain(import.meta.url, main, variantUsage('registration-variants', Object.keys(VARIANTS)));
