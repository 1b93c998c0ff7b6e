// Kernel profiling with timestamp queries.
//
// While a profile is open, launch() gets the timestampWrites of each
// compute pass from passTimestamps(), so the device records the time at the
// beginning and the end of every dispatch. stopKernelProfile() waits
// for the device, resolves the queries and returns one duration per
// dispatch, with its kernel name and pass label.
//
// NOTE: Dawn quantizes timestamps (to multiples of 2^16 ns with webgpu
// 0.6.2 on lavapipe, measured), so a single short dispatch may read 0 or
// 65.5 us.
// Totals over many dispatches average this out; single figures below about
// 0.5 ms are rough.

import { deviceInfo, gpuDevice, sync } from '../device.js';
import { BUFFER_USAGE, MAP_MODE_READ } from '../gpu-constants.js';

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
}

// WebGPU allows at most 4096 queries per query set: 2048 passes.
const QUERIES_PER_SET = 4096;
const QUERY_RESOLVE = 0x0200;

interface Profile {
  sets: GPUQuerySet[];
  dispatches: Omit<DispatchTiming, 'ms'>[];
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
  profile = { sets: [], dispatches: [] };
}

/**
 * Returns the timestampWrites for the pass of the next dispatch, or
 * undefined when no profile is open.
 */
export function passTimestamps(
  dispatch: Omit<DispatchTiming, 'ms'>,
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

/** Closes the open profile and returns the timing of each dispatch. */
export async function stopKernelProfile(): Promise<DispatchTiming[]> {
  const done = profile;
  if (!done) throw new Error('stopKernelProfile: no profile is open');
  profile = null;
  await sync();
  const perSet = QUERIES_PER_SET / 2;
  const timings: DispatchTiming[] = [];
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
  return timings;
}
