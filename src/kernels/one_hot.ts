// Launcher of the one-hot encoder (one_hot.wgsl, one_hot_status.wgsl) and
// the deferred check of its labels.
//
// Each encoding of a device tensor gets a two-word status buffer that the
// kernels fill with the first invalid voxel and its value. The first sync()
// (and so any toArray()) after the encoding reads the status buffers of all
// encodings since the previous sync and throws a RangeError for the first
// one that met a bad label. No readback happens before that.

import { addSyncCheck, flush, gpuDevice } from '../device.js';
import { BUFFER_USAGE, MAP_MODE_READ } from '../gpu-constants.js';
import { acquireStorage, releaseStorage } from '../pool.js';
import { empty, formatShape, type Tensor } from '../tensor.js';
import { launch, workgroupsFor, type KernelSpec } from './launch.js';
import { copyValues, rowGroups } from './row_groups.js';

const ONE_HOT_SPEC: KernelSpec = {
  name: 'one_hot',
  uniforms: [
    ['rows', 'u32'],
    ['first_row', 'u32'],
    ['voxels', 'u32'],
    ['classes', 'u32'],
  ],
  bindings: [
    { name: 'labels', access: 'read' },
    { name: 'out', access: 'read_write' },
    { name: 'status', access: 'read_write', type: 'atomic<u32>' },
  ],
};

const STATUS_SPEC: KernelSpec = {
  name: 'one_hot_status',
  uniforms: [],
  bindings: [
    { name: 'labels', access: 'read' },
    { name: 'status', access: 'read_write', type: 'u32' },
  ],
  workgroupSize: 1,
};

// status[0] while no invalid label was found.
const NO_VOXEL = 0xffffffff;
const STATUS_BYTES = 8;

interface PendingCheck {
  op: string;
  status: GPUBuffer;
  labelShape: readonly number[];
  classes: number;
}

let pending: PendingCheck[] = [];
let registered = false;

async function readStatus(status: GPUBuffer): Promise<Uint32Array> {
  const device = gpuDevice();
  const staging = device.createBuffer({
    size: STATUS_BYTES,
    usage: BUFFER_USAGE.MAP_READ | BUFFER_USAGE.COPY_DST,
    label: 'one-hot status readback',
  });
  try {
    const encoder = device.createCommandEncoder({ label: 'one-hot status' });
    encoder.copyBufferToBuffer(status, 0, staging, 0, STATUS_BYTES);
    device.queue.submit([encoder.finish()]);
    await staging.mapAsync(MAP_MODE_READ);
    const words = new Uint32Array(staging.getMappedRange().slice(0));
    staging.unmap();
    return words;
  } finally {
    staging.destroy();
  }
}

function describe(check: PendingCheck, voxel: number, valueBits: number): string {
  const value = new Float32Array(Uint32Array.of(valueBits).buffer)[0];
  return (
    `${check.op}: label ${value} at index ${voxel} of labels ` +
    `${formatShape(check.labelShape)} is not a class id in [0, ${check.classes}) ` +
    `(found by the device check at sync); relabel the map to ` +
    `0..${check.classes - 1} or raise numClasses`
  );
}

async function readPendingChecks(): Promise<void> {
  const checks = pending;
  if (checks.length === 0) return;
  pending = [];
  // Encodings recorded after sync() submitted its work are still in the
  // encoder; they must run before their status is read.
  flush();
  let message: string | null = null;
  for (const check of checks) {
    const [voxel, valueBits] = await readStatus(check.status);
    releaseStorage(check.status);
    if (voxel !== NO_VOXEL && message === null) message = describe(check, voxel, valueBits);
  }
  if (message !== null) throw new RangeError(message);
}

/**
 * One-hot encodes `labels` ([N, voxels] values, any shape with that many
 * elements) into a new tensor of `outShape` = [N, K, ...spatial]; invalid
 * labels raise at the next sync().
 */
export function oneHotKernel(op: string, labels: Tensor, outShape: readonly number[]): Tensor {
  const [n, k] = outShape;
  const voxels = labels.size / n;
  const groups = rowGroups(op, outShape, n * k, voxels * 4);
  if (!registered) {
    addSyncCheck(readPendingChecks);
    registered = true;
  }
  const status = acquireStorage(STATUS_BYTES);
  // writeBuffer runs before the recorded dispatches, as they must see it.
  gpuDevice().queue.writeBuffer(status, 0, Uint32Array.of(NO_VOXEL, 0));
  pending.push({ op, status, labelShape: labels.shape, classes: k });

  const out = empty(outShape, op);
  const labelBinding = { buffer: labels.buffer(op), bytes: labels.bytes };
  const statusBinding = { buffer: status, bytes: STATUS_BYTES };
  for (const group of groups) {
    const whole = group.count === n * k;
    const part = whole ? out : empty([group.count, voxels], op);
    launch(ONE_HOT_SPEC, {
      label: op,
      uniforms: { rows: group.count, first_row: group.first, voxels, classes: k },
      buffers: [labelBinding, { buffer: part.buffer(op), bytes: part.bytes }, statusBinding],
      workgroups: workgroupsFor(ONE_HOT_SPEC, voxels),
    });
    if (!whole) {
      copyValues(op, part, 0, out, group.first * voxels, part.size);
      part.dispose();
    }
  }
  launch(STATUS_SPEC, {
    label: `${op} status`,
    uniforms: {},
    buffers: [labelBinding, statusBinding],
    workgroups: 1,
  });
  return out;
}
