// Work per invocation of the copy-like kernels (expand, pad, concat,
// index_select) and of reductions with short pieces. On llvmpipe each
// invocation has a fixed cost that dominates a one-element copy. In one
// measurement on this project's 2-core machine, shared with other jobs,
// a strided copy of 2^24 floats took about 1.5 s with one element per
// invocation and 0.13 s with runs of 32. A GPU prefers one element per
// invocation, so neighbouring invocations store to neighbouring addresses.

import { deviceInfo } from '../device.js';
import { workgroupsFor, type KernelSpec } from './launch.js';

export const runOptions = {
  /** Elements per invocation, or 'auto' (32 on CPU adapters, else 1). */
  elementsPerInvocation: 'auto' as 'auto' | number,
};

/** True on fallback adapters such as llvmpipe and SwiftShader (CPU). */
export function isCpuAdapter(): boolean {
  return deviceInfo().isFallbackAdapter;
}

/** Elements each invocation of a copy-like kernel handles. */
export function elementsPerInvocation(): number {
  const setting = runOptions.elementsPerInvocation;
  if (setting !== 'auto') return Math.max(1, Math.floor(setting));
  return isCpuAdapter() ? 32 : 1;
}

const withRuns = new WeakMap<KernelSpec, Map<number, KernelSpec>>();

/**
 * Returns `spec` with its {{RUN}} constant set to elementsPerInvocation(),
 * and the workgroups that cover `size` elements at that run length.
 */
export function runLaunch(
  spec: KernelSpec,
  size: number,
): { spec: KernelSpec; workgroups: number } {
  const run = elementsPerInvocation();
  let byRun = withRuns.get(spec);
  if (!byRun) {
    byRun = new Map();
    withRuns.set(spec, byRun);
  }
  let sized = byRun.get(run);
  if (!sized) {
    sized = { ...spec, constants: { ...spec.constants, RUN: run } };
    byRun.set(run, sized);
  }
  const workgroups = workgroupsFor(sized, Math.ceil(size / run));
  return { spec: sized, workgroups };
}

/**
 * Outputs per invocation for a kernel that reads `elementsPerOutput`
 * inputs for each output, so an invocation handles about
 * elementsPerInvocation() inputs in all.
 */
export function outputsPerInvocation(elementsPerOutput: number): number {
  const perOutput = Math.max(1, elementsPerOutput);
  return Math.max(1, Math.floor(elementsPerInvocation() / perOutput));
}
