// Debug checks that run on the device.
//
// With setDebugChecks({ nonFinite: true }), each checked op output is
// scanned by the nan-check kernel right after the op, in the same command
// stream, without a readback. The kernel writes into a one-word flag buffer
// the slot of the earliest op in the batch whose output had a NaN or Inf.
// sync() (and so toArray()) reads the flag once the GPU is done and throws
// NonFiniteError naming that op and its shapes. When the mode is off,
// checkOutput() returns at its first line.

import { addSyncCheck, flush, gpuDevice } from './device.js';
import { BUFFER_USAGE, MAP_MODE_READ } from './gpu-constants.js';
import { launch, workgroupsFor, type KernelSpec } from './kernels/launch.js';
import { acquireStorage, releaseStorage } from './pool.js';
import { formatShape, type Tensor } from './tensor.js';

export interface DebugChecks {
  /** Check every op output for NaN and Inf; throws at the next sync(). */
  nonFinite: boolean;
}

/** Raised by sync() or toArray() when a checked op produced NaN or Inf. */
export class NonFiniteError extends Error {
  override name = 'NonFiniteError';
}

const settings: DebugChecks = { nonFinite: false };
let registered = false;

/** Turns debug checks on or off; options not given keep their value. */
export function setDebugChecks(options: Partial<DebugChecks>): void {
  if (options.nonFinite !== undefined) settings.nonFinite = options.nonFinite;
  if (settings.nonFinite && !registered) {
    addSyncCheck(readBatch);
    registered = true;
  }
}

/** Returns the debug checks in force. */
export function debugChecks(): Readonly<DebugChecks> {
  return { ...settings };
}

const NAN_CHECK_SPEC: KernelSpec = {
  name: 'nan-check',
  uniforms: [
    ['size', 'u32'],
    ['slot', 'u32'],
  ],
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'flags', access: 'read_write', type: 'atomic<u32>' },
  ],
};

// flags[0] before any check of the batch flagged a slot.
const NO_SLOT = 0xffffffff;

interface CheckedOp {
  op: string;
  outputShape: readonly number[];
  inputShapes: (readonly number[])[];
}

interface CheckBatch {
  flags: GPUBuffer;
  ops: CheckedOp[];
}

// Checks recorded since the last sync(). Each batch has its own flag buffer,
// so ops recorded while an earlier batch is read back cannot be lost.
let batch: CheckBatch | null = null;

function openBatch(): CheckBatch {
  const flags = acquireStorage(4);
  gpuDevice().queue.writeBuffer(flags, 0, new Uint32Array([NO_SLOT]));
  return { flags, ops: [] };
}

/**
 * Records a device-side NaN and Inf check of `out`, the output of `op` on
 * `inputs`, when setDebugChecks({ nonFinite: true }) is on. Ops that do not
 * go through binaryKernel or unaryKernel call it after their kernel.
 */
export function checkOutput(
  op: string,
  out: Tensor,
  inputs: readonly { readonly shape: readonly number[] }[],
): void {
  if (!settings.nonFinite || out.size === 0) return;
  batch ??= openBatch();
  const slot = batch.ops.length;
  batch.ops.push({
    op,
    outputShape: out.shape,
    inputShapes: inputs.map((input) => input.shape),
  });
  launch(NAN_CHECK_SPEC, {
    label: `${op} (non-finite check)`,
    uniforms: { size: out.size, slot },
    buffers: [
      { buffer: out.buffer(op), bytes: out.bytes },
      { buffer: batch.flags, bytes: 4 },
    ],
    workgroups: workgroupsFor(NAN_CHECK_SPEC, out.size),
  });
}

function describe(checked: CheckedOp): string {
  const inputs = checked.inputShapes.map(formatShape).join(', ');
  return (
    `${checked.op}: output of shape ${formatShape(checked.outputShape)} ` +
    `contains NaN or Inf (inputs ${inputs})`
  );
}

async function readFlag(flags: GPUBuffer): Promise<number> {
  const device = gpuDevice();
  const staging = device.createBuffer({
    size: 4,
    usage: BUFFER_USAGE.MAP_READ | BUFFER_USAGE.COPY_DST,
    label: 'non-finite flags readback',
  });
  try {
    const encoder = device.createCommandEncoder({ label: 'non-finite flags' });
    encoder.copyBufferToBuffer(flags, 0, staging, 0, 4);
    device.queue.submit([encoder.finish()]);
    await staging.mapAsync(MAP_MODE_READ);
    const slot = new Uint32Array(staging.getMappedRange())[0];
    staging.unmap();
    return slot;
  } finally {
    staging.destroy();
  }
}

async function readBatch(): Promise<void> {
  const done = batch;
  if (!done) return;
  batch = null;
  // Checks recorded after sync() submitted its work are still in the
  // encoder; they must run before their flag is read.
  flush();
  const slot = await readFlag(done.flags);
  releaseStorage(done.flags);
  if (slot !== NO_SLOT) throw new NonFiniteError(describe(done.ops[slot]));
}
