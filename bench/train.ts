// Seconds per RRL-MedSAM training iteration, per stage, for a model width
// and grid size: `npx tsx bench/train.ts [--preset NAME] [--size N]
// [--iterations N] [--warmup N] [--encoder W,W,W,W,W] [--decoder W,W,W,W]
// [--decoder-convs 1|2]`.
// Without --preset and --size it runs the matrix of presets default and
// cpu at 48^3 and 64^3. --encoder, --decoder and --decoder-convs override
// the preset, to try candidates.
//
// Each iteration is one Trainer.step() on phantom scans with random
// teacher features, so it includes the wait for the device. Besides wall
// time it prints process CPU time (process.cpuUsage, all threads, the
// lavapipe workers included) divided by 2, which estimates the wall time
// of an idle 2-core machine when other processes share this one.
//
// The file also exports two workloads that bench/workloads/index.ts lists,
// T1 and T2 (one iteration of stage 1 or stage 2 with the cpu preset at
// 48^3), which time wall clock only.

import { randn, ready, sync, tensor, type Tensor } from '../src/index.js';
import { RRL_PRESETS, RrlMedSam, type RrlPresetName } from '../src/nn/rrl/index.js';
import { makePhantom } from '../src/pipeline/phantom.js';
import { createTrainer, type Augment, type Trainer } from '../src/pipeline/train/index.js';
import type { PreparedWorkload, Workload } from './harness.js';
import { runMain, UsageError } from '../scripts/run-main.js';

export interface Arguments {
  presets: RrlPresetName[];
  encoderChannels?: number[];
  decoderChannels?: number[];
  decoderConvs?: 1 | 2;
  sizes: number[];
  iterations: number;
  warmup: number;
}

const USAGE =
  'usage: npx tsx bench/train.ts [--preset default|cpu|tiny] [--size N] ' +
  '[--iterations N] [--warmup N] [--encoder W,W,W,W,W] [--decoder W,W,W,W] ' +
  '[--decoder-convs 1|2]';

function parseArguments(argv: readonly string[]): Arguments {
  const parsed: Arguments = {
    presets: ['cpu', 'default'],
    sizes: [48, 64],
    iterations: 2,
    warmup: 1,
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new UsageError(`bench/train: ${flag} needs a value\n${USAGE}`);
    if (flag === '--preset') {
      if (!(value in RRL_PRESETS)) throw new UsageError(`bench/train: unknown preset ${value}`);
      parsed.presets = [value as RrlPresetName];
    } else if (flag === '--size') parsed.sizes = [Number(value)];
    else if (flag === '--iterations') parsed.iterations = Number(value);
    else if (flag === '--warmup') parsed.warmup = Number(value);
    else if (flag === '--encoder') parsed.encoderChannels = value.split(',').map(Number);
    else if (flag === '--decoder') parsed.decoderChannels = value.split(',').map(Number);
    else if (flag === '--decoder-convs') parsed.decoderConvs = Number(value) as 1 | 2;
    else throw new UsageError(`bench/train: unknown argument ${flag}\n${USAGE}`);
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

export function buildModel(preset: RrlPresetName, args: Arguments): RrlMedSam {
  return new RrlMedSam({
    preset,
    numClasses: STRUCTURES + 1,
    ...(args.encoderChannels && { encoderChannels: args.encoderChannels }),
    ...(args.decoderChannels && { decoderChannels: args.decoderChannels }),
    ...(args.decoderConvs && { decoderConvs: args.decoderConvs }),
  });
}

/** A trainer on two phantom scans, with its dispose function. */
export function phantomTrainer(
  model: RrlMedSam,
  size: number,
  stage1Iterations: number,
  stage2Iterations: number,
  options: { augment?: Augment } = {},
): { trainer: Trainer; dispose: () => void } {
  const atlas = phantomTensors(size, 1);
  const scans = [2, 3].map((seed) => phantomTensors(size, seed).image);
  // The small SAM teacher at 256x256 gives 256 x size x 16 x 16 features.
  const teachers = scans.map((_, i) => randn([256, size, 16, 16], 10 + i));
  const trainer = createTrainer(
    model,
    { atlas, scans, teacher: (index) => teachers[index] },
    { stage1Iterations, stage2Iterations, augment: options.augment },
  );
  const dispose = () => {
    trainer.dispose();
    model.dispose();
    for (const t of [atlas.image, atlas.labels, ...scans, ...teachers]) {
      t.dispose();
    }
  };
  return { trainer, dispose };
}

async function timeConfig(
  preset: RrlPresetName,
  size: number,
  args: Arguments,
): Promise<StageTiming[]> {
  const { iterations, warmup } = args;
  const perStage = warmup + iterations;
  const model = buildModel(preset, args);
  const { trainer, dispose } = phantomTrainer(model, size, perStage, perStage);
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
  dispose();
  return timings;
}

/** One training iteration of `stage` with the cpu preset at 48^3. */
function trainWorkload(name: string, stage: 1 | 2): Workload {
  const size = 48;
  return {
    name,
    summary: `Trainer.step() of stage ${stage}, cpu preset, [1,1,${size},${size},${size}]`,
    iterations: 3,
    timeMs: 1000,
    warmupIterations: 0,
    async prepare(): Promise<PreparedWorkload> {
      const model = new RrlMedSam({ preset: 'cpu', numClasses: STRUCTURES + 1 });
      // Enough iterations that timing never reaches the end of the stage.
      const long = 1000;
      const { trainer, dispose } =
        stage === 1
          ? phantomTrainer(model, size, long, 0)
          : phantomTrainer(model, size, 0, long);
      // The first step compiles the pipelines, outside the timed runs.
      await trainer.step();
      return {
        run: async () => {
          await trainer.step();
        },
        dispose,
      };
    },
  };
}

export const trainStage1 = trainWorkload('T1', 1);
export const trainStage2 = trainWorkload('T2', 2);

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
      const probe = buildModel(preset, args);
      const count = probe.parameterCount();
      const { encoderChannels, decoderChannels, decoderConvs } = probe.config;
      const widths =
        `[${encoderChannels}] / [${decoderChannels}] x ${decoderConvs} convs`;
      probe.dispose();
      console.log(`${preset} encoder / decoder widths ${widths}`);
      const timings = await timeConfig(preset, size, args);
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

runMain(import.meta.url, main, USAGE);
