// Kernel time of conv3d's forward pass, input gradient and weight gradient
// on the convolutions of the cpu preset's training step at 48^3:
// `npx tsx bench/conv3d-shapes.ts [--repeats N] [--only NAME,NAME]`.
//
// Each repeat runs the forward and the backward pass of one convolution
// under a kernel profile (src/kernels/profile.ts) and sums the pass times
// by pass label, which gives the device time of each part. It also prints
// the process CPU time of each part (all threads, divided by 2 for the two
// cores), which other processes on the machine disturb less. The forward
// pass and the gradient run with a sync() between them. With
// LP_NUM_THREADS=1 lavapipe runs a single worker thread, so no time spent
// waiting for a second thread inflates the CPU figures.

import { backward, conv3d, randn, ready, sync } from '../src/index.js';
import { startKernelProfile, stopKernelProfile } from '../src/kernels/profile.js';
import { runMain, UsageError } from '../scripts/run-main.js';

export interface ConvShape {
  name: string;
  x: [number, number, number, number, number];
  outChannels: number;
  kernel: number;
  stride: number;
  padding: number;
}

function shape(name: string, cin: number, size: number, cout: number, stride = 1): ConvShape {
  return { name, x: [1, cin, size, size, size], outChannels: cout, kernel: 3, stride, padding: 1 };
}

/** The largest convolutions of the cpu preset's step at 48^3. */
export const TRAINING_SHAPES: readonly ConvShape[] = [
  shape('1-4@48', 1, 48, 4),
  shape('4-4@48', 4, 48, 4),
  shape('8-4@48', 8, 48, 4),
  shape('12-4@48', 12, 48, 4),
  shape('4-3@48', 4, 48, 3),
  shape('4-8@48s2', 4, 48, 8, 2),
  shape('8-8@24', 8, 24, 8),
  shape('16-4@24', 16, 24, 4),
  shape('8-16@24s2', 8, 24, 16, 2),
  shape('16-16@12', 16, 12, 16),
];

const PARTS = ['conv3d', 'conv3d input gradient', 'conv3d weight gradient'] as const;

// The part a pass label belongs to: "conv3d pack weight" is the forward's,
// "conv3d input gradient pack weight" the input gradient's.
function partOf(label: string): string | undefined {
  if (label.startsWith('conv3d input gradient')) return PARTS[1];
  if (label.startsWith('conv3d weight gradient')) return PARTS[2];
  if (label === 'conv3d' || label === 'conv3d pack weight') return PARTS[0];
  return undefined;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

interface PartTimes {
  /** Device milliseconds of the part's passes, per repeat. */
  device: number[];
  /** Process CPU milliseconds / 2 of the part, per repeat. */
  cpu: number[];
}

function cpuMs(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1e3 / 2;
}

/**
 * Times the forward pass and one gradient of `conv`, `repeats` times after
 * one untimed run that compiles the pipelines. `gradientOf` picks the
 * tensor whose gradient the backward pass computes.
 */
async function timeGradient(
  conv: ConvShape,
  gradientOf: 'input' | 'weight',
  repeats: number,
  times: Map<string, PartTimes>,
): Promise<void> {
  const [, cin, d, h, w] = conv.x;
  const k = conv.kernel;
  const x = randn(conv.x, 1, { requiresGrad: gradientOf === 'input' });
  const weight = randn([conv.outChannels, cin, k, k, k], 2, {
    requiresGrad: gradientOf === 'weight',
  });
  const bias = randn([conv.outChannels], 3);
  const options = { stride: conv.stride, padding: conv.padding };
  const outSize = [d, h, w].map((s) => Math.floor((s + 2 * conv.padding - k) / conv.stride) + 1);
  const gradient = randn([1, conv.outChannels, ...outSize], 4);
  const part = gradientOf === 'input' ? PARTS[1] : PARTS[2];
  await sync();

  for (let r = 0; r <= repeats; r++) {
    await startKernelProfile();
    let started = process.cpuUsage();
    const out = conv3d(x, weight, bias, options);
    await sync();
    const forwardCpu = cpuMs(started);
    started = process.cpuUsage();
    backward(out, gradient);
    await sync();
    const backwardCpu = cpuMs(started);
    const timings = await stopKernelProfile();
    out.dispose();
    for (const t of [x, weight]) {
      t.grad?.dispose();
      t.grad = null;
    }
    // The first run compiles the pipelines; it is not counted.
    if (r === 0) continue;
    const deviceMs = (name: string) =>
      timings.filter((t) => partOf(t.label) === name).reduce((sum, t) => sum + t.ms, 0);
    if (gradientOf === 'input') {
      times.get(PARTS[0])!.device.push(deviceMs(PARTS[0]));
      times.get(PARTS[0])!.cpu.push(forwardCpu);
    }
    times.get(part)!.device.push(deviceMs(part));
    times.get(part)!.cpu.push(backwardCpu);
  }
  for (const t of [x, weight, bias, gradient]) t.dispose();
  await sync();
}

/** Device and CPU milliseconds of the three parts of `conv`. */
export async function timeShape(
  conv: ConvShape,
  repeats: number,
): Promise<Map<string, PartTimes>> {
  const times = new Map<string, PartTimes>(PARTS.map((part) => [part, { device: [], cpu: [] }]));
  await timeGradient(conv, 'input', repeats, times);
  await timeGradient(conv, 'weight', repeats, times);
  return times;
}

const USAGE =
  'usage: npx tsx bench/conv3d-shapes.ts [--repeats N] [--only NAME,NAME]\n' +
  `shapes: ${TRAINING_SHAPES.map((conv) => conv.name).join(', ')}`;

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  let repeats = 5;
  let only: string[] | null = null;
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new UsageError(`bench/conv3d-shapes: ${flag} is missing its value\n${USAGE}`);
    if (flag === '--repeats' && /^[1-9]\d*$/.test(value)) repeats = Number(value);
    else if (flag === '--only') only = value.split(',');
    else throw new UsageError(`bench/conv3d-shapes: invalid argument ${flag} ${value}\n${USAGE}`);
  }
  const unknown = (only ?? []).filter((name) => !TRAINING_SHAPES.some((conv) => conv.name === name));
  if (unknown.length > 0) throw new UsageError(`bench/conv3d-shapes: unknown shape ${unknown.join(', ')}\n${USAGE}`);
  const info = await ready();
  console.log(`adapter: ${info.adapter}`);
  console.log(
    `device ms (min, median) and process CPU ms / 2 (min) over ${repeats} repeats`,
  );
  console.log('shape          forward             input gradient      weight gradient');
  let totalMin = 0;
  for (const conv of TRAINING_SHAPES) {
    if (only && !only.includes(conv.name)) continue;
    const times = await timeShape(conv, repeats);
    const cells = PARTS.map((part) => {
      const { device, cpu } = times.get(part)!;
      const min = Math.min(...device);
      totalMin += min;
      return `${min.toFixed(1).padStart(6)} ${median(device).toFixed(1).padStart(6)} ` +
        `${Math.min(...cpu).toFixed(1).padStart(6)}`;
    });
    console.log(`${conv.name.padEnd(13)}  ${cells.join('  ')}`);
  }
  console.log(`sum of the device minimums: ${totalMin.toFixed(1)} ms`);
}

runMain(import.meta.url, main, USAGE);
