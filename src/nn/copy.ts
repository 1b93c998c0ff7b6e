// Device-side copies between tensors of the same shape, for loading state
// into existing tensors (module parameters, optimiser moments) and for
// snapshots.

import { commandEncoder, dispatchRecorded } from '../device.js';
import { empty, formatShape, type Tensor } from '../tensor.js';
import { sameShape } from '../ops/shape.js';

/**
 * Overwrites `target`'s storage with `source`'s values, on the device. The
 * copy is recorded in the shared encoder, so it runs after every dispatch
 * recorded before it and ahead of every one recorded after it.
 */
export function copyInto(op: string, target: Tensor, source: Tensor): void {
  if (!sameShape(target.shape, source.shape)) {
    throw new RangeError(
      `${op}: cannot copy a tensor of shape ${formatShape(source.shape)} ` +
        `into one of shape ${formatShape(target.shape)}`,
    );
  }
  const targetBuffer = target.buffer(op);
  const sourceBuffer = source.buffer(op);
  target.markModified();
  if (target.size === 0 || targetBuffer === sourceBuffer) return;
  const encoder = commandEncoder(op);
  encoder.copyBufferToBuffer(sourceBuffer, 0, targetBuffer, 0, source.bytes);
  dispatchRecorded();
}

/** Returns a new tensor with a copy of `source`'s values (no autograd). */
export function cloneTensor(op: string, source: Tensor): Tensor {
  const out = empty(source.shape, op);
  copyInto(op, out, source);
  return out;
}
