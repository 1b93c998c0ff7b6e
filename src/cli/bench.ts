// `rrl-medsam bench`: seconds per training iteration of each stage, on
// phantom volumes of the requested size, with process CPU time and the
// device memory the pools hold (their high-water mark, since pooled
// buffers are kept for reuse). The iteration is the one `train` runs,
// with the same augmentation. The class count sets the cost of the
// segmentation heads, the label warp and the Dice losses, so it defaults
// to the 43 classes of the IXI demo (42 structures and background).
// `train` weights L_dice with l3 = 1 and the demo with l3 = 0, which
// skips the gradient of the label warp, so --weight-dice 0 times the
// demo's iteration.

import { ready, sync } from '../device.js';
import { randn } from '../ops/creation.js';
import { tensor, type Tensor } from '../tensor.js';
import { RRL_PRESETS, type RrlPresetName } from '../nn/rrl/config.js';
import { RrlMedSam } from '../nn/rrl/model.js';
import { makePhantom } from '../pipeline/phantom.js';
import { createTrainer } from '../pipeline/train/index.js';
import { deviceMemory } from './progress.js';
import { checkGridSize, pairedAugmenter, TRAINING_AUGMENTATION } from './train.js';

export interface BenchSettings {
  size: number;
  preset: RrlPresetName;
  iterations: number;
  warmup: number;
  /** Output classes of the segmentation decoders. */
  classes: number;
  augment: boolean;
  /** l3, the weight of L_dice in L_reg: 1 as in `train`, 0 as in `demo`. */
  registrationDice: number;
}

/** Labelled structures of the phantoms. Classes above them stay empty. */
const STRUCTURES = 4;

function phantom(size: number, seed: number): { image: Tensor; labels: Tensor } {
  const volume = makePhantom({ size, seed, structures: STRUCTURES });
  const shape = [1, 1, size, size, size];
  // Phantom white matter is near 1000: this puts intensities near [0, 1].
  return {
    image: tensor(volume.image.data.map((v) => v / 1000), shape),
    labels: tensor(volume.labels.data, shape),
  };
}

/** Runs the benchmark and prints one line per stage. */
export async function runBench(
  settings: BenchSettings,
  say: (line: string) => void,
): Promise<{ stage: 1 | 2; seconds: number; cpuSeconds: number }[]> {
  const { size, preset, iterations, warmup, classes } = settings;
  checkGridSize('bench', size);
  const info = await ready();
  say(`device: ${info.adapter}`);
  if (classes < STRUCTURES + 1) {
    throw new Error(
      `bench: --classes ${classes} is below the ${STRUCTURES + 1} classes of the phantoms`,
    );
  }
  const model = new RrlMedSam({ ...RRL_PRESETS[preset], numClasses: classes });
  const atlas = phantom(size, 1);
  const scans = [2, 3].map((seed) => phantom(size, seed).image);
  const featureSide = 8;
  const teachers = scans.map((_, i) => randn([256, size, featureSide, featureSide], 10 + i));
  const perStage = warmup + iterations;
  const trainer = createTrainer(
    model,
    { atlas, scans, teacher: (index) => teachers[index] },
    {
      stage1Iterations: perStage,
      stage2Iterations: perStage,
      augment: settings.augment ? pairedAugmenter(TRAINING_AUGMENTATION, 0) : undefined,
      weights: { registrationDice: settings.registrationDice },
    },
  );
  say(
    `preset ${preset} (${model.parameterCount().toLocaleString('en-US')} parameters), ` +
      `grid ${size}^3, ${classes} classes, augmentation ${settings.augment ? 'on' : 'off'}, ` +
      `l3 = ${settings.registrationDice}, ` +
      `${iterations} timed iteration${iterations === 1 ? '' : 's'} per stage after ${warmup} warm-up`,
  );
  const results: { stage: 1 | 2; seconds: number; cpuSeconds: number }[] = [];
  try {
    await sync();
    for (const stage of [1, 2] as const) {
      for (let i = 0; i < warmup; i++) await trainer.step();
      const cpuStart = process.cpuUsage();
      const started = performance.now();
      for (let i = 0; i < iterations; i++) await trainer.step();
      const cpu = process.cpuUsage(cpuStart);
      const seconds = (performance.now() - started) / 1000 / iterations;
      const cpuSeconds = (cpu.user + cpu.system) / 1e6 / iterations;
      results.push({ stage, seconds, cpuSeconds });
      say(
        `stage ${stage}: ${seconds.toFixed(2)} s/iteration (process CPU ` +
          `${cpuSeconds.toFixed(2)} s/iteration), device memory ${deviceMemory()}`,
      );
    }
  } finally {
    trainer.dispose();
    model.dispose();
    for (const t of [atlas.image, atlas.labels, ...scans, ...teachers]) t.dispose();
  }
  return results;
}
