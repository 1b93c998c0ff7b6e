// Device acquisition and the shared command stream.
//
// One GPUDevice serves the whole process. Kernels record their dispatches
// into a shared command encoder. The encoder is submitted when a result is
// read back, when a batch grows past MAX_BATCHED_DISPATCHES, or on flush().
// GPU errors are caught by error scopes around each submission and by the
// device's uncapturederror event, and thrown at the next point that waits on
// the device, so a failed kernel never shows up as silently wrong numbers.
//
// The entry point (navigator.gpu, or Dawn in Node) comes from gpu-entry.ts.
// Browser bundles get gpu-entry.browser.ts instead: the `browser` field of
// package.json maps one file to the other, so that a bundle never contains
// the `webgpu` package and this file has no Node-only code.

import { ADAPTER_HELP, findGpu, foundGpu } from './gpu-entry.js';
import { log } from './log.js';

/** Result of `ready()`: the adapter's name, limits and features. */
export interface DeviceInfo {
  adapter: string;
  limits: Readonly<Record<string, number>>;
  features: ReadonlySet<string>;
  isFallbackAdapter: boolean;
  /**
   * Minimum invocations per subgroup on this adapter (its
   * `subgroupMinSize`), 0 when the adapter does not report it.
   */
  subgroupMinSize: number;
}

/** Raised when no WebGPU adapter is available or device creation fails. */
export class NoAdapterError extends Error {
  override name = 'NoAdapterError';
}

/** A GPU validation, out-of-memory or internal error, or a lost device. */
export class GpuError extends Error {
  override name = 'GpuError';
}

// Dispatches recorded before the encoder is submitted on its own. Bounds the
// memory held by buffers released during a batch (see pool.ts).
const MAX_BATCHED_DISPATCHES = 256;

interface DeviceState {
  device: GPUDevice;
  info: DeviceInfo;
  encoder: GPUCommandEncoder | null;
  batchedDispatches: number;
  batchLabels: string[];
  pendingChecks: Promise<string | null>[];
  recordedErrors: string[];
  lost: string | null;
  afterSubmit: (() => void)[];
}

let state: DeviceState | null = null;
let starting: Promise<DeviceInfo> | null = null;

function adapterName(adapter: GPUAdapter): string {
  const info = adapter.info;
  const parts = [info.vendor, info.architecture, info.device, info.description]
    .filter((part) => part && part.length > 0)
    .filter((part, i, all) => all.indexOf(part) === i);
  return parts.length > 0 ? parts.join(' ') : 'unknown adapter';
}

// Limits worth raising above the WebGPU defaults when the adapter allows it.
const REQUESTED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
  'maxUniformBufferBindingSize',
  'maxBindGroups',
] as const;

const NO_NAVIGATOR_GPU =
  'ready: this browser does not expose navigator.gpu. Use a browser ' +
  'with WebGPU enabled (Chrome or Edge 113+, Safari 26+, Firefox 141+ ' +
  'on Windows), served over https or from localhost.';

// Wait before the second adapter request. Headless Chromium 156's first
// request after launch takes about 0.8 s and sometimes returns null.
const ADAPTER_RETRY_DELAY_MS = 250;

async function requestAdapterWithRetry(gpu: GPU): Promise<GPUAdapter | null> {
  const adapter = await gpu.requestAdapter({
    powerPreference: 'high-performance',
  });
  if (adapter) return adapter;
  log.warn(
    `ready: requestAdapter returned null; retrying once in ` +
      `${ADAPTER_RETRY_DELAY_MS} ms`,
  );
  await new Promise((resolve) => setTimeout(resolve, ADAPTER_RETRY_DELAY_MS));
  return gpu.requestAdapter();
}

async function start(): Promise<DeviceInfo> {
  const gpu = await findGpu();
  if (!gpu) throw new NoAdapterError(NO_NAVIGATOR_GPU);
  const adapter = await requestAdapterWithRetry(gpu);
  if (!adapter) {
    throw new NoAdapterError(
      `ready: no WebGPU adapter found. ${ADAPTER_HELP}`,
    );
  }
  const requiredLimits: Record<string, number> = {};
  for (const key of REQUESTED_LIMITS) {
    const value = (adapter.limits as unknown as Record<string, number>)[key];
    if (typeof value === 'number') requiredLimits[key] = value;
  }
  const wanted: GPUFeatureName[] = ['shader-f16', 'timestamp-query', 'subgroups'];
  const requiredFeatures = wanted.filter((f) => adapter.features.has(f));
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  } catch (err) {
    throw new NoAdapterError(
      `ready: the adapter "${adapterName(adapter)}" failed to create a ` +
        `device: ${(err as Error).message}. ${ADAPTER_HELP}`,
    );
  }
  const limits: Record<string, number> = {};
  for (const key of REQUESTED_LIMITS) {
    limits[key] = (device.limits as unknown as Record<string, number>)[key];
  }
  const info: DeviceInfo = {
    adapter: adapterName(adapter),
    limits,
    features: new Set([...device.features].map(String)),
    isFallbackAdapter: Boolean(
      (adapter.info as { isFallbackAdapter?: boolean }).isFallbackAdapter,
    ),
    subgroupMinSize: Number(
      (adapter.info as { subgroupMinSize?: number }).subgroupMinSize ?? 0,
    ),
  };
  const s: DeviceState = {
    device,
    info,
    encoder: null,
    batchedDispatches: 0,
    batchLabels: [],
    pendingChecks: [],
    recordedErrors: [],
    lost: null,
    afterSubmit: [],
  };
  device.addEventListener('uncapturederror', (event) => {
    const message = (event as GPUUncapturedErrorEvent).error.message;
    log.error(`uncaptured GPU error: ${message}`);
    s.recordedErrors.push(message);
  });
  void device.lost.then((lost) => {
    s.lost = `device lost (${lost.reason}): ${lost.message}`;
    if (lost.reason !== 'destroyed') log.error(s.lost);
  });
  state = s;
  log.debug(`adapter: ${info.adapter}`);
  log.debug(`limits: ${JSON.stringify(limits)}`);
  return info;
}

/**
 * Acquires the shared WebGPU device: `navigator.gpu` in a browser, Dawn
 * (the `webgpu` package) in Node. Requests the adapter's own limits rather
 * than the WebGPU defaults. Safe to call many times.
 */
export function ready(): Promise<DeviceInfo> {
  if (!starting) {
    starting = start().catch((err) => {
      starting = null;
      throw err;
    });
  }
  return starting;
}

function current(): DeviceState {
  if (!state) {
    throw new NoAdapterError(
      'rrl-medsam: the GPU device is not initialised. Call `await ready()` ' +
        'before creating tensors.',
    );
  }
  if (state.lost) throw new GpuError(state.lost);
  return state;
}

/**
 * The GPU entry point the device came from (`navigator.gpu`, or Dawn's in
 * Node), so another WebGPU library can share the same adapter, as the
 * benchmarks do with TensorFlow.js. Throws when `ready()` has not completed.
 */
export function gpuEntryPoint(): GPU {
  current();
  const gpu = foundGpu();
  if (!gpu) throw new NoAdapterError('gpuEntryPoint: no GPU entry point was found');
  return gpu;
}

/** Returns the shared device; throws when `ready()` has not completed. */
export function gpuDevice(): GPUDevice {
  return current().device;
}

/** Adapter name, limits and features of the shared device. */
export function deviceInfo(): DeviceInfo {
  return current().info;
}

/** Returns the shared encoder, creating one after each submission. */
export function commandEncoder(label: string): GPUCommandEncoder {
  const s = current();
  if (!s.encoder) s.encoder = s.device.createCommandEncoder();
  s.batchLabels.push(label);
  return s.encoder;
}

/** Counts a recorded dispatch and submits the batch when it grows large. */
export function dispatchRecorded(): void {
  const s = current();
  s.batchedDispatches += 1;
  if (s.batchedDispatches >= MAX_BATCHED_DISPATCHES) flush();
}

/** True while recorded commands wait to be submitted. */
export function hasPendingCommands(): boolean {
  return state?.encoder != null;
}

/** Runs `callback` right after the next submission (or now, if idle). */
export function afterNextSubmit(callback: () => void): void {
  const s = current();
  if (!s.encoder) callback();
  else s.afterSubmit.push(callback);
}

function summarise(labels: string[]): string {
  const unique = [...new Set(labels)];
  const shown = unique.slice(0, 12).join(', ');
  return unique.length > 12 ? `${shown}, ...` : shown;
}

/**
 * Watches a device call for validation, out-of-memory and internal errors.
 * The result is checked at the next point that waits on the device.
 */
export function checkErrors<T>(what: string, call: () => T): T {
  const s = current();
  const { device } = s;
  device.pushErrorScope('internal');
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let result: T;
  try {
    result = call();
  } finally {
    const scopes = [device.popErrorScope(), device.popErrorScope(), device.popErrorScope()];
    s.pendingChecks.push(
      Promise.all(scopes).then((errors) => {
        const found = errors.filter((e): e is GPUError => e !== null);
        if (found.length === 0) return null;
        return `${what}: ${found.map((e) => e.message).join('; ')}`;
      }),
    );
  }
  return result;
}

/** Submits every recorded dispatch. Does not wait for the GPU. */
export function flush(): void {
  const s = current();
  const encoder = s.encoder;
  if (!encoder) return;
  const labels = s.batchLabels;
  s.encoder = null;
  s.batchedDispatches = 0;
  s.batchLabels = [];
  checkErrors(`kernels [${summarise(labels)}]`, () => {
    s.device.queue.submit([encoder.finish()]);
  });
  const callbacks = s.afterSubmit;
  s.afterSubmit = [];
  for (const callback of callbacks) callback();
}

/**
 * Submits recorded work, waits for the GPU and throws the first error that
 * any kernel, pipeline or submission produced since the last check.
 */
export async function sync(): Promise<void> {
  flush();
  const s = current();
  await s.device.queue.onSubmittedWorkDone();
  await throwRecordedErrors();
  for (const check of syncChecks) await check();
}

// Checks that sync() runs, in order, once the GPU finished and no GPU error
// was thrown: debug.ts reads its NaN and Inf flags here.
const syncChecks: (() => Promise<void>)[] = [];

/** Registers a check that every sync() (and so toArray()) awaits last. */
export function addSyncCheck(check: () => Promise<void>): void {
  syncChecks.push(check);
}

/** Throws errors collected by error scopes and the uncapturederror event. */
export async function throwRecordedErrors(): Promise<void> {
  const s = state;
  if (!s) return;
  const checks = s.pendingChecks;
  s.pendingChecks = [];
  const messages = (await Promise.all(checks)).filter(
    (m): m is string => m !== null,
  );
  messages.push(...s.recordedErrors.splice(0));
  if (s.lost) messages.push(s.lost);
  if (messages.length > 0) {
    throw new GpuError(`GPU error: ${messages.join('\n')}`);
  }
}
