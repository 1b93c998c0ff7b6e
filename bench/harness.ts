// Shared pieces of the benchmark runner: the workload interface, timing with
// tinybench, the roofline fraction and the printed table.

import { Bench } from 'tinybench';

/** Best rates of the adapter, measured at the start of a run. */
export interface Ceilings {
  /** Peak arithmetic, GFLOP/s: the peak-fma probe kernel. */
  gflops: number;
  /** Streaming bandwidth, GB/s: the copy probe kernel (read + write bytes). */
  gbps: number;
  /** copyBufferToBuffer, GB/s (read + write bytes), for comparison. */
  copyBufferToBufferGbps: number;
}

/** A workload ready to be timed. */
export interface PreparedWorkload {
  /** Records the work and waits until the GPU has finished it. */
  run: () => Promise<void>;
  /** Untimed setup before each run, such as the forward pass of a backward. */
  beforeEach?: () => Promise<void>;
  /** Floating-point operations of one run, if arithmetic bounds it. */
  flops?: number;
  /** Bytes one run must move to and from memory, if bandwidth bounds it. */
  bytes?: number;
  /** Frees the workload's tensors. */
  dispose: () => void;
}

/**
 * One benchmark. Add a file under bench/workloads/ exporting a Workload and
 * list it in bench/workloads/index.ts.
 */
export interface Workload {
  /** Short name for --only and the JSON results, such as "M1". */
  name: string;
  /** One line saying what is timed. */
  summary: string;
  /**
   * False for workloads too slow for the default run (which should stay
   * within a few minutes on llvmpipe); they run with --only or --all.
   */
  defaultRun?: boolean;
  /** Minimum timed runs (tinybench iterations). */
  iterations: number;
  /** Minimum timed milliseconds (tinybench time); runs continue until both are met. */
  timeMs: number;
  /** Untimed runs before timing. */
  warmupIterations: number;
  /** Creates the inputs, compiles kernels and tunes, untimed. */
  prepare: () => Promise<PreparedWorkload>;
}

export interface WorkloadResult {
  name: string;
  /** Median milliseconds per run. */
  ms: number;
  gflops?: number;
  gbps?: number;
  /**
   * Roofline fraction: the time the ceilings allow, max(flops / peak,
   * bytes / bandwidth), over the measured time. 1 means at the ceiling.
   */
  ceilingFraction: number;
  /** Our time over TensorFlow.js's WebGPU backend on the same adapter. */
  vsTfjs?: number;
  /** Our time over PyTorch on the CPU (bench/torch_bench.py). */
  vsTorch?: number;
}

export interface TimingOptions {
  iterations: number;
  timeMs: number;
  warmupIterations: number;
}

/**
 * Times `run` with tinybench and returns the median milliseconds per call.
 * `run` must wait for the GPU to finish inside the call.
 */
export async function medianMs(
  name: string,
  run: () => Promise<void>,
  options: TimingOptions,
  beforeEach?: () => Promise<void>,
): Promise<number> {
  const bench = new Bench({
    iterations: options.iterations,
    time: options.timeMs,
    warmup: options.warmupIterations > 0,
    warmupIterations: options.warmupIterations,
    warmupTime: 0,
    throws: true,
  });
  bench.add(name, run, beforeEach ? { beforeEach } : {});
  await bench.run();
  const result = bench.tasks[0].result;
  if (!('latency' in result)) {
    throw new Error(`bench: task ${name} finished without timings (state ${result.state})`);
  }
  return result.latency.p50;
}

/** Builds the result of a workload from its median time and work counts. */
export function resultOf(
  name: string,
  ms: number,
  work: { flops?: number; bytes?: number },
  ceilings: Ceilings,
): WorkloadResult {
  const seconds = ms / 1000;
  const result: WorkloadResult = { name, ms, ceilingFraction: 0 };
  let boundSeconds = 0;
  if (work.flops !== undefined) {
    result.gflops = work.flops / seconds / 1e9;
    boundSeconds = Math.max(boundSeconds, work.flops / (ceilings.gflops * 1e9));
  }
  if (work.bytes !== undefined) {
    result.gbps = work.bytes / seconds / 1e9;
    boundSeconds = Math.max(boundSeconds, work.bytes / (ceilings.gbps * 1e9));
  }
  result.ceilingFraction = boundSeconds / seconds;
  return result;
}

function cell(value: number | undefined, digits: number): string {
  return value === undefined ? '-' : value.toFixed(digits);
}

/** Formats the results as an aligned text table, one workload per row. */
export function formatTable(results: readonly WorkloadResult[], ceilings: Ceilings): string {
  const header = ['workload', 'ms', 'GFLOP/s', 'GB/s', 'of ceiling', 'ours/tfjs', 'ours/torch'];
  const rows = results.map((r) => [
    r.name,
    cell(r.ms, 2),
    r.gflops === undefined ? '-' : `${r.gflops.toFixed(2)} (${percent(r.gflops / ceilings.gflops)})`,
    r.gbps === undefined ? '-' : `${r.gbps.toFixed(2)} (${percent(r.gbps / ceilings.gbps)})`,
    percent(r.ceilingFraction),
    r.vsTfjs === undefined ? '-' : `${r.vsTfjs.toFixed(2)}x`,
    r.vsTorch === undefined ? '-' : `${r.vsTorch.toFixed(2)}x`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (row: string[]): string =>
    row.map((text, i) => (i === 0 ? text.padEnd(widths[i]) : text.padStart(widths[i]))).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function percent(fraction: number): string {
  return `${(100 * fraction).toFixed(1)}%`;
}
