// Time one RRL-MedSAM training iteration per kernel:
// `npx tsx bench/profile-train.ts [--preset NAME] [--size N] [--warmup N]
// [--top N] [--dispatches N] [--replays N] [--stage 1|2] [--classes N]`.
//
// The step is the demo's: 43 output classes by default (the 42 IXI
// structures and background) and the paired augmentation of `train`.
//
// After the warm-up steps of a stage, one step runs under a kernel
// profile (src/kernels/profile.ts): the device writes a timestamp at the
// beginning and the end of every compute pass. The tool prints the
// kernels and the pass labels (the op that launched them) with the largest
// total time, and the sum of all passes next to the step's wall time. The
// difference is time outside the kernels: recording on the CPU, buffer
// uploads, readbacks and waits.
//
// With --replays N each dispatch then runs N more times on its own, and
// the tables rank by the minimum process CPU time of one run. That time
// counts all threads and is divided by 2 for the two cores of this
// machine, after the overhead of an empty submission is subtracted. Other
// processes on the machine inflate it far less than the device time.

import { ready, sync } from '../src/index.js';
import {
  startKernelProfile,
  stopKernelProfile,
  type DispatchTiming,
} from '../src/kernels/profile.js';
import { RRL_PRESETS, RrlMedSam, type RrlPresetName } from '../src/nn/rrl/index.js';
import { pairedAugmenter, TRAINING_AUGMENTATION } from '../src/cli/train.js';
import { phantomTrainer } from './train.js';
import { runMain, UsageError } from '../scripts/run-main.js';

interface Arguments {
  preset: RrlPresetName;
  size: number;
  warmup: number;
  top: number;
  /** Slowest single dispatches to list with their uniforms. */
  dispatches: number;
  /** Replays of each dispatch for its CPU time, or 0. */
  replays: number;
  stages: (1 | 2)[];
  /** Output classes of the segmentation decoders (the IXI demo has 43). */
  classes: number;
}

const USAGE =
  'usage: npx tsx bench/profile-train.ts [--preset default|cpu|tiny] ' +
  '[--size N] [--warmup N] [--top N] [--dispatches N] [--replays N] [--stage 1|2] [--classes N]';

function parseArguments(argv: readonly string[]): Arguments {
  const parsed: Arguments = { preset: 'cpu', size: 64, warmup: 1, top: 25, dispatches: 0, replays: 0, stages: [1, 2], classes: 43 };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) {
      throw new UsageError(`bench/profile-train: ${flag} needs a value\n${USAGE}`);
    }
    if (flag === '--preset') {
      if (!(value in RRL_PRESETS)) {
        throw new UsageError(`bench/profile-train: unknown preset ${value}`);
      }
      parsed.preset = value as RrlPresetName;
    } else if (flag === '--size') parsed.size = Number(value);
    else if (flag === '--warmup') parsed.warmup = Number(value);
    else if (flag === '--top') parsed.top = Number(value);
    else if (flag === '--dispatches') parsed.dispatches = Number(value);
    else if (flag === '--replays') parsed.replays = Number(value);
    else if (flag === '--stage') parsed.stages = [Number(value) === 2 ? 2 : 1];
    else if (flag === '--classes') parsed.classes = Number(value);
    else throw new UsageError(`bench/profile-train: unknown argument ${flag}\n${USAGE}`);
  }
  return parsed;
}

interface Total {
  name: string;
  count: number;
  ms: number;
}

/** The figure the tables rank by: replay CPU ms / 2 when measured, else device ms. */
function measure(timing: DispatchTiming, overheadMs: number): number {
  if (timing.cpuMs === undefined) return timing.ms;
  return Math.max(0, timing.cpuMs - overheadMs) / 2;
}

/** Sums a measure of the dispatches by a key, largest total first. */
export function totalsBy(
  timings: readonly DispatchTiming[],
  key: (timing: DispatchTiming) => string,
  value: (timing: DispatchTiming) => number = (timing) => timing.ms,
): Total[] {
  const totals = new Map<string, Total>();
  for (const timing of timings) {
    const name = key(timing);
    const total = totals.get(name) ?? { name, count: 0, ms: 0 };
    total.count += 1;
    total.ms += value(timing);
    totals.set(name, total);
  }
  return [...totals.values()].sort((a, b) => b.ms - a.ms);
}

function printTotals(title: string, totals: readonly Total[], top: number, sum: number): void {
  console.log(`\n${title}`);
  console.log('      ms      %  launches  mean ms  name');
  for (const total of totals.slice(0, top)) {
    console.log(
      `${total.ms.toFixed(1).padStart(8)} ${((100 * total.ms) / sum).toFixed(1).padStart(6)}` +
        `${String(total.count).padStart(10)} ${(total.ms / total.count).toFixed(3).padStart(8)}` +
        `  ${total.name}`,
    );
  }
}

function printSlowest(
  timings: readonly DispatchTiming[],
  count: number,
  value: (timing: DispatchTiming) => number,
): void {
  if (count <= 0) return;
  console.log('\nslowest dispatches: ms, label, workgroups, uniforms');
  const slowest = [...timings].sort((a, b) => value(b) - value(a)).slice(0, count);
  for (const timing of slowest) {
    const uniforms = Object.entries(timing.uniforms)
      .map(([name, value]) => `${name}=${value}`)
      .join(' ');
    console.log(
      `${value(timing).toFixed(2).padStart(8)}  ${timing.label}  ` +
        `${timing.workgroups}  ${uniforms}`,
    );
  }
}

async function main(): Promise<void> {
  const args = parseArguments(process.argv.slice(2));
  const info = await ready();
  console.log(`adapter: ${info.adapter}`);
  const perStage = args.warmup + 1;
  const model = new RrlMedSam({ preset: args.preset, numClasses: args.classes });
  const { trainer, dispose } = phantomTrainer(model, args.size, perStage, perStage, {
    augment: pairedAugmenter(TRAINING_AUGMENTATION, 0),
  });
  await sync();
  for (let stage = 1; stage <= 2; stage++) {
    for (let i = 0; i < args.warmup; i++) await trainer.step();
    const cpuStart = process.cpuUsage();
    await startKernelProfile();
    const started = performance.now();
    await trainer.step();
    const wallMs = performance.now() - started;
    const cpu = process.cpuUsage(cpuStart);
    const selected = args.stages.includes(stage as 1 | 2);
    const timings = await stopKernelProfile({ replays: selected ? args.replays : 0 });
    if (!selected) continue;
    const overheadMs = timings.overheadMs ?? 0;
    const value = (timing: DispatchTiming) => measure(timing, overheadMs);
    const deviceSum = timings.reduce((s, t) => s + t.ms, 0);
    const sum = timings.reduce((s, t) => s + value(t), 0);
    console.log(
      `\nstage ${stage}, preset ${args.preset}, ${args.size}^3: ` +
        `wall ${wallMs.toFixed(0)} ms, process CPU / 2 ` +
        `${((cpu.user + cpu.system) / 2e3).toFixed(0)} ms, ` +
        `${timings.length} dispatches taking ${deviceSum.toFixed(0)} ms in all`,
    );
    if (args.replays > 0) {
      console.log(
        `replayed ${args.replays} times: ${sum.toFixed(0)} ms of CPU / 2 in all, ` +
          `tables in CPU ms / 2 (empty submission ${overheadMs.toFixed(2)} ms subtracted)`,
      );
    }
    printTotals('by kernel', totalsBy(timings, (t) => t.kernel, value), args.top, sum);
    printTotals('by pass label', totalsBy(timings, (t) => t.label, value), args.top, sum);
    printSlowest(timings, args.dispatches, value);
  }
  dispose();
}

runMain(import.meta.url, main, USAGE);
