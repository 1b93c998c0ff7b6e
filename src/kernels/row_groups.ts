// Splitting a tensor of independent rows into groups that fit one storage
// binding, for kernels whose whole input would exceed
// maxStorageBufferBindingSize (128 MiB on llvmpipe and many GPUs).
//
// launch() binds whole buffers, so a group that is not the whole tensor is
// copied into a temporary tensor with copyBufferToBuffer (recorded in the
// shared encoder, so it stays ordered with the dispatches). On llvmpipe (2
// cores) such copies ran at about 19 GB/s against 4 GB/s for a vec4 copy
// kernel, so they add little to the kernels they feed.

import { commandEncoder, deviceInfo, dispatchRecorded } from '../device.js';
import { formatShape, type Tensor } from '../tensor.js';

export const rowGroupOptions = {
  /**
   * Largest binding in bytes; 0 uses the device's
   * maxStorageBufferBindingSize. Tests set it low to run the grouped path
   * on small tensors.
   */
  maxBindingBytes: 0,
};

/** A group of `count` consecutive rows starting at row `first`. */
export interface RowGroup {
  first: number;
  count: number;
}

/**
 * Cuts `rows` rows of `rowBytes` bytes into groups of at most the binding
 * limit. Throws naming the op and shape when a single row does not fit.
 */
export function rowGroups(
  op: string,
  shape: readonly number[],
  rows: number,
  rowBytes: number,
): RowGroup[] {
  const limit =
    rowGroupOptions.maxBindingBytes || deviceInfo().limits.maxStorageBufferBindingSize;
  if (rowBytes > limit) {
    throw new RangeError(
      `${op}: one row of ${rowBytes} bytes of ${formatShape(shape)} exceeds ` +
        `the largest storage binding of ${limit} bytes; use a smaller volume`,
    );
  }
  const perGroup = Math.max(1, Math.floor(limit / rowBytes));
  const groups: RowGroup[] = [];
  for (let first = 0; first < rows; first += perGroup) {
    groups.push({ first, count: Math.min(perGroup, rows - first) });
  }
  return groups;
}

/** Records a copy of `count` float32 values between tensors, offsets in values. */
export function copyValues(
  op: string,
  source: Tensor,
  sourceOffset: number,
  target: Tensor,
  targetOffset: number,
  count: number,
): void {
  if (count === 0) return;
  const encoder = commandEncoder(`${op} copy`);
  encoder.copyBufferToBuffer(
    source.buffer(op),
    sourceOffset * 4,
    target.buffer(op),
    targetOffset * 4,
    count * 4,
  );
  dispatchRecorded();
}
