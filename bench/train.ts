// Seconds per RRL-MedSAM training iteration, per stage, for a model width
// and grid size: `npx tsx bench/train.ts [--preset NAME] [--size N]
// [--iterations N] [--warmup N]`. Without --preset and --size it runs the
// matrix of presets default and cpu at 48^3 and 64^3.
//
// Each iteration is one Trainer.step() on phantom scans with random
// teacher features, so it includes the wait for the device. Besides wall
// time it prints process CPU time (process.cpuUsage, all threads, the
// lavapipe workers included) divided by 2, which estimates the wall time
// of an idle 2-core machine when other processes share this one.
//
// NOTE: this script is not a workload of bench/run.ts because it times
// whole training iterations (up to minutes each) and reports CPU time.

import { randn, ready, sync, tensor, type Tensor } from '../src/index.js';
import { RRL_PRESETS, RrlMedSam, type RrlPresetName } from '../src/nn/rrl/index.js';
import { makePhantom } from '../src/pipeline/phantom.js';
import { createTrainer } from '../src/pipeline/train/index.js';

interface Arguments {
  presets: RrlPresetName[];
  sizes: number[];
  iterations: number;
  warmup: number;
}

const USAGE =
  'usage: npx tsx bench/train.ts [--preset default|cpu|tiny] [--size N] ' +
  '[--iterations N] [--warmup N]';

function parseArguments(argv: readonly string[]): Arguments {
  const parsed: Arguments = {
    presets: ['cpu', 'default'],
    sizes: [48, 64],
    iterations: 2,
    warmup: 1,
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`bench/train: ${flag} needs a value\n${USAGE}`);
    if (flag === '--preset') {
      if (!(value in RRL_PRESETS)) throw new Error(`bench/train: unknown preset ${value}`);
      parsed.presets = [value as RrlPresetName];
    } else if (flag === '--size') parsed.sizes = [Number(value)];
    else if (flag === '--iterations') parsed.iterations = Number(value);
    else if (flag === '--warmup') parsed.warmup = Number(value);
    else throw new Error(`bench/train: unknown argument ${flag}\n${USAGE}`);
  }
  return parsed;
}

const STRUCTURES = 4;

function phantomTensors(size: number, seed: number): { image: Tensor; labels: Tensor } {
  const phantom = makePhantom({ size, seed, structures: STRUCTURES });
  const shape = [1, 1, size, size, size];
  // White matter is near 1000, so this puts intensities near [0, 1].
  const image = tensor(phantom.image.data.map((v) => v / 1000), shape);
  return { image, labels: tensor(phantom.labels.data, shape) };
}

interface StageTiming {
  wallSeconds: number;
  cpuSeconds: number;
}

async function timeConfig(
  preset: RrlPresetName,
  size: number,
  iterations: number,
  warmup: number,
): Promise<StageTiming[]> {
  const atlas = phantomTensors(size, 1);
  const scans = [2, 3].map((seed) => phantomTensors(size, seed).image);
  // The small SAM teacher at 256x256 gives 256 x size x 16 x 16 features.
  const teachers = scans.map((_, i) => randn([256, size, 16, 16], 10 + i));
  const model = new RrlMedSam({ preset, numClasses: STRUCTURES + 1 });
  const perStage = warmup + iterations;
  const trainer = createTrainer(
    model,
    { atlas, scans, teacher: (index) => teachers[index] },
    { stage1Iterations: perStage, stage2Iterations: perStage },
  );
  await sync();
  const timings: StageTiming[] = [];
  for (let stage = 1; stage <= 2; stage++) {
    for (let i = 0; i < warmup; i++) await trainer.step();
    const cpuStart = process.cpuUsage();
    const wallStart = performance.now();
    for (let i = 0; i < iterations; i++) await trainer.step();
    const cpu = process.cpuUsage(cpuStart);
    timings.push({
      wallSeconds: (performance.now() - wallStart) / 1000 / iterations,
      cpuSeconds: (cpu.user + cpu.system) / 1e6 / iterations,
    });
  }
  trainer.dispose();
  model.dispose();
  for (const t of [atlas.image, atlas.labels, ...scans, ...teachers]) t.dispose();
  return timings;
}

async function main(): Promise<void> {
  const args = parseArguments(process.argv.slice(2));
  const info = await ready();
  console.log(`adapter: ${info.adapter}`);
  console.log(
    'preset   grid  parameters  stage  wall s/it  cpu/2 s/it  (mean of ' +
      `${args.iterations} after ${args.warmup} warm-up)`,
  );
  for (const preset of args.presets) {
    for (const size of args.sizes) {
      const parameters = new RrlMedSam({ preset, numClasses: STRUCTURES + 1 });
      const count = parameters.parameterCount();
      parameters.dispose();
      const timings = await timeConfig(preset, size, args.iterations, args.warmup);
      timings.forEach((timing, i) => {
        console.log(
          `${preset.padEnd(8)} ${String(size).padStart(3)}^3 ` +
            `${count.toLocaleString('en-US').padStart(11)}  ${i + 1}      ` +
            `${timing.wallSeconds.toFixed(2).padStart(8)}  ` +
            `${(timing.cpuSeconds / 2).toFixed(2).padStart(10)}`,
        );
      });
    }
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? err.stack : err);
    process.exit(1);
  },
);
