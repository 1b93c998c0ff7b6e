// Kernel profiling with timestamp queries, and by replay.
//
// While a profile is open, launch() gets the timestampWrites of each
// compute pass from passTimestamps(), so the device records the time at the
// beginning and the end of every dispatch. stopKernelProfile() waits for
// the device, resolves the queries and returns one duration per dispatch,
// with its kernel name and pass label.
//
// When other processes load the machine, those durations include the time
// the driver's threads wait for a core. stopKernelProfile({ replays }) then
// also runs every recorded dispatch again on its own, `replays` times, each
// time waiting for the device, and reports the minimum process CPU time
// (all threads) of one run. The replays read the buffers as they are after
// the step, which later ops may have overwritten. So a profile keeps each
// dispatch's uniform buffer, and copies its integer bindings (tables,
// indices, atomics: what loop bounds come from) as they are when the
// dispatch is recorded. Float data may have changed, so a kernel whose
// addresses come from floats (warp) may take a different time on replay.
//
// NOTE: Dawn quantizes timestamps (to multiples of 2^16 ns with webgpu
// 0.6.2 on lavapipe, measured), so a single short dispatch may read 0 or
// 65.5 us. Totals over many dispatches average this out; single figures
// below about 0.5 ms are rough.

import { deviceInfo, gpuDevice, sync } from '../device.js';
import { BUFFER_USAGE, MAP_MODE_READ } from '../gpu-constants.js';
import type { KernelSpec } from './launch.js';

/** One profiled dispatch. */
export interface DispatchTiming {
  kernel: string;
  label: string;
  /** Workgroups of the dispatch. */
  workgroups: number;
  /** The dispatch's uniform values. */
  uniforms: Readonly<Record<string, number | readonly number[]>>;
  /** Time between the beginning and the end of the pass, in milliseconds. */
  ms: number;
  /** Minimum process CPU milliseconds of one replay, when replays were requested. */
  cpuMs?: number;
}

/** Pipeline, bind group and grid that replay a dispatch. */
export interface DispatchReplay {
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  grid: readonly [number, number, number];
}

// WebGPU allows at most 4096 queries per query set: 2048 passes.
const QUERIES_PER_SET = 4096;
const QUERY_RESOLVE = 0x0200;

interface Profile {
  sets: GPUQuerySet[];
  dispatches: Omit<DispatchTiming, 'ms'>[];
  replays: DispatchReplay[];
  /** Buffers the profile created, destroyed when it closes. */
  owned: GPUBuffer[];
}

let profile: Profile | null = null;

/** True while a kernel profile is open. */
export function isProfiling(): boolean {
  return profile !== null;
}

/**
 * Opens a kernel profile: every dispatch recorded from now until
 * stopKernelProfile() is timed. Throws when the device lacks the
 * timestamp-query feature.
 */
export async function startKernelProfile(): Promise<void> {
  if (profile) throw new Error('startKernelProfile: a profile is already open');
  if (!deviceInfo().features.has('timestamp-query')) {
    throw new Error(
      `startKernelProfile: the adapter "${deviceInfo().adapter}" does not ` +
        'offer the timestamp-query feature',
    );
  }
  // Work recorded before the profile must not be counted in its first pass.
  await sync();
  profile = { sets: [], dispatches: [], replays: [], owned: [] };
}

/**
 * Creates a uniform buffer that the open profile owns until it closes, so
 * that a replay finds the dispatch's uniforms unchanged.
 */
export function profileUniformBuffer(bytes: number): GPUBuffer {
  if (!profile) throw new Error('profileUniformBuffer: no profile is open');
  const buffer = gpuDevice().createBuffer({
    size: bytes,
    usage: BUFFER_USAGE.UNIFORM | BUFFER_USAGE.COPY_DST,
    label: 'kernel profile uniforms',
  });
  profile.owned.push(buffer);
  return buffer;
}

const INTEGER_TYPES = new Set(['u32', 'i32', 'atomic<u32>', 'atomic<i32>']);

/**
 * Returns the bind group a replay of the next dispatch uses: `entries`
 * with every integer binding of `spec` replaced by a copy that `encoder`
 * makes now, before the dispatch.
 */
export function replayBindGroup(
  spec: KernelSpec,
  layout: GPUBindGroupLayout,
  entries: readonly GPUBindGroupEntry[],
  encoder: GPUCommandEncoder,
): GPUBindGroup {
  if (!profile) throw new Error('replayBindGroup: no profile is open');
  const device = gpuDevice();
  const copied = entries.map((entry, i) => {
    const binding = spec.bindings[i - 1];
    if (i === 0 || !INTEGER_TYPES.has(binding.type ?? 'f32')) return entry;
    const resource = entry.resource as GPUBufferBinding;
    // A placeholder that the kernel does not read may lack COPY_SRC.
    if ((resource.buffer.usage & BUFFER_USAGE.COPY_SRC) === 0) return entry;
    const size = resource.size ?? resource.buffer.size;
    const copy = device.createBuffer({
      size,
      usage: BUFFER_USAGE.STORAGE | BUFFER_USAGE.COPY_DST | BUFFER_USAGE.COPY_SRC,
      label: `kernel profile copy of ${binding.name}`,
    });
    encoder.copyBufferToBuffer(resource.buffer, 0, copy, 0, size);
    profile!.owned.push(copy);
    return { binding: entry.binding, resource: { buffer: copy, size } };
  });
  return device.createBindGroup({ label: `${spec.name} replay`, layout, entries: copied });
}

/**
 * Returns the timestampWrites for the pass of the next dispatch, or
 * undefined when no profile is open.
 */
export function passTimestamps(
  dispatch: Omit<DispatchTiming, 'ms'>,
  replay: DispatchReplay,
): GPUComputePassTimestampWrites | undefined {
  if (!profile) return undefined;
  const slot = profile.dispatches.length;
  const perSet = QUERIES_PER_SET / 2;
  if (slot % perSet === 0) {
    profile.sets.push(
      gpuDevice().createQuerySet({ type: 'timestamp', count: QUERIES_PER_SET }),
    );
  }
  profile.dispatches.push(dispatch);
  profile.replays.push(replay);
  const local = slot % perSet;
  return {
    querySet: profile.sets[profile.sets.length - 1],
    beginningOfPassWriteIndex: 2 * local,
    endOfPassWriteIndex: 2 * local + 1,
  };
}

async function readQueries(set: GPUQuerySet, count: number): Promise<BigUint64Array> {
  const device = gpuDevice();
  const bytes = count * 8;
  const resolved = device.createBuffer({
    size: bytes,
    usage: QUERY_RESOLVE | BUFFER_USAGE.COPY_SRC,
    label: 'kernel profile resolve',
  });
  const staging = device.createBuffer({
    size: bytes,
    usage: BUFFER_USAGE.MAP_READ | BUFFER_USAGE.COPY_DST,
    label: 'kernel profile readback',
  });
  try {
    const encoder = device.createCommandEncoder({ label: 'kernel profile' });
    encoder.resolveQuerySet(set, 0, count, resolved, 0);
    encoder.copyBufferToBuffer(resolved, 0, staging, 0, bytes);
    device.queue.submit([encoder.finish()]);
    await staging.mapAsync(MAP_MODE_READ);
    return new BigUint64Array(staging.getMappedRange().slice(0));
  } finally {
    staging.unmap();
    staging.destroy();
    resolved.destroy();
  }
}

function processCpuMs(): number {
  if (typeof process === 'undefined' || !process.cpuUsage) {
    throw new Error('stopKernelProfile: replays need process.cpuUsage (Node)');
  }
  const used = process.cpuUsage();
  return (used.user + used.system) / 1e3;
}

/** Returns the minimum process CPU milliseconds of one run of `replay` over `count` runs. */
async function replayCpuMs(replay: DispatchReplay | null, count: number): Promise<number> {
  const device = gpuDevice();
  let minimum = Infinity;
  for (let r = 0; r < count; r++) {
    const started = processCpuMs();
    const encoder = device.createCommandEncoder({ label: 'kernel profile replay' });
    const pass = encoder.beginComputePass({ label: 'kernel profile replay' });
    if (replay) {
      pass.setPipeline(replay.pipeline);
      pass.setBindGroup(0, replay.bindGroup);
      pass.dispatchWorkgroups(...replay.grid);
    }
    pass.end();
    device.queue.submit([encoder.finish()]);
    await device.queue.onSubmittedWorkDone();
    minimum = Math.min(minimum, processCpuMs() - started);
  }
  return minimum;
}

/** Options of stopKernelProfile. */
export interface StopProfileOptions {
  /** Runs of each dispatch on its own for its CPU time; 0 (default) skips them. */
  replays?: number;
}

/**
 * Closes the open profile and returns the timing of each dispatch. With
 * `replays`, it also returns the CPU milliseconds of an empty submission
 * (`overheadMs`, not subtracted from the dispatches' cpuMs).
 */
export async function stopKernelProfile(
  options: StopProfileOptions = {},
): Promise<DispatchTiming[] & { overheadMs?: number }> {
  const done = profile;
  if (!done) throw new Error('stopKernelProfile: no profile is open');
  profile = null;
  await sync();
  const perSet = QUERIES_PER_SET / 2;
  const timings: DispatchTiming[] & { overheadMs?: number } = [];
  for (let s = 0; s < done.sets.length; s++) {
    const first = s * perSet;
    const passes = Math.min(perSet, done.dispatches.length - first);
    const stamps = await readQueries(done.sets[s], 2 * passes);
    for (let i = 0; i < passes; i++) {
      const ns = Number(stamps[2 * i + 1] - stamps[2 * i]);
      timings.push({ ...done.dispatches[first + i], ms: ns / 1e6 });
    }
    done.sets[s].destroy();
  }
  const replays = options.replays ?? 0;
  if (replays > 0) {
    timings.overheadMs = await replayCpuMs(null, replays);
    for (let i = 0; i < timings.length; i++) {
      timings[i].cpuMs = await replayCpuMs(done.replays[i], replays);
    }
    await sync();
  }
  for (const buffer of done.owned) buffer.destroy();
  return timings;
}
