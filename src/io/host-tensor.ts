// HostTensor: a tensor in CPU memory as read from or written to a checkpoint,
// contiguous row-major, in the dtype the file stores.
//
// The data array type follows the dtype: float64 Float64Array, float32
// Float32Array, int64 BigInt64Array, uint64 BigUint64Array, int32 Int32Array,
// uint32 Uint32Array, int16 Int16Array, uint16 Uint16Array, int8 Int8Array,
// uint8 and bool Uint8Array (bool as 0 or 1). float16 and bfloat16 are widened
// to Float32Array, exactly, and keep their dtype name, so writing them back
// narrows to the same bits.

import { CheckpointError } from './checkpoint-error.js';
import {
  bfloat16BitsToFloat32Bits,
  float16BitsToFloat32Bits,
  float32BitsToBfloat16Bits,
  float32BitsToFloat16Bits,
} from './float16.js';

export type HostDtype =
  | 'float64'
  | 'float32'
  | 'float16'
  | 'bfloat16'
  | 'int64'
  | 'uint64'
  | 'int32'
  | 'uint32'
  | 'int16'
  | 'uint16'
  | 'int8'
  | 'uint8'
  | 'bool';

export type HostTensorData =
  | Float64Array
  | Float32Array
  | BigInt64Array
  | BigUint64Array
  | Int32Array
  | Uint32Array
  | Int16Array
  | Uint16Array
  | Int8Array
  | Uint8Array;

export interface HostTensor {
  dtype: HostDtype;
  shape: number[];
  data: HostTensorData;
}

interface DtypeInfo {
  /** Bytes per element in a file. */
  readonly bytes: number;
  readonly array: { new (length: number): HostTensorData; name: string };
}

const DTYPES: Readonly<Record<HostDtype, DtypeInfo>> = {
  float64: { bytes: 8, array: Float64Array },
  float32: { bytes: 4, array: Float32Array },
  float16: { bytes: 2, array: Float32Array },
  bfloat16: { bytes: 2, array: Float32Array },
  int64: { bytes: 8, array: BigInt64Array },
  uint64: { bytes: 8, array: BigUint64Array },
  int32: { bytes: 4, array: Int32Array },
  uint32: { bytes: 4, array: Uint32Array },
  int16: { bytes: 2, array: Int16Array },
  uint16: { bytes: 2, array: Uint16Array },
  int8: { bytes: 1, array: Int8Array },
  uint8: { bytes: 1, array: Uint8Array },
  bool: { bytes: 1, array: Uint8Array },
};

const HOST_IS_LITTLE_ENDIAN =
  new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function isHostDtype(name: string): name is HostDtype {
  return Object.prototype.hasOwnProperty.call(DTYPES, name);
}

/** Bytes one element of the dtype takes in a file (2 for float16). */
export function dtypeBytes(dtype: HostDtype): number {
  return DTYPES[dtype].bytes;
}

/** Names the typed array type that stores a dtype's values in memory. */
export function dtypeArrayName(dtype: HostDtype): string {
  return DTYPES[dtype].array.name;
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

/**
 * Returns the element count of a shape, or throws a CheckpointError from
 * `op` when a dimension is not a non-negative safe integer or the count
 * passes 2^53.
 */
export function elementCount(op: string, shape: readonly number[]): number {
  let count = 1;
  for (const dim of shape) {
    if (!Number.isSafeInteger(dim) || dim < 0) {
      throw new CheckpointError(
        `${op}: shape ${formatShape(shape)} must contain non-negative integers`,
      );
    }
    count *= dim;
  }
  if (!Number.isSafeInteger(count)) {
    throw new CheckpointError(
      `${op}: shape ${formatShape(shape)} has more than 2^53 elements`,
    );
  }
  return count;
}

/**
 * Checks that a tensor's data array matches its dtype and shape, and throws a
 * CheckpointError from `op` naming the tensor otherwise.
 */
export function checkHostTensor(
  op: string,
  name: string,
  tensor: HostTensor,
): void {
  if (!isHostDtype(tensor.dtype)) {
    throw new CheckpointError(
      `${op}: tensor '${name}' has unknown dtype '${String(tensor.dtype)}'`,
    );
  }
  const info = DTYPES[tensor.dtype];
  if (!(tensor.data instanceof info.array)) {
    const data = tensor.data as object | null | undefined;
    const got = data?.constructor?.name ?? typeof data;
    throw new CheckpointError(
      `${op}: tensor '${name}' of dtype ${tensor.dtype} needs its data in a ` +
        `${info.array.name}, got ${got}`,
    );
  }
  const count = elementCount(`${op}: tensor '${name}'`, tensor.shape);
  if (tensor.data.length !== count) {
    throw new CheckpointError(
      `${op}: tensor '${name}' has shape ${formatShape(tensor.shape)} ` +
        `(${count} elements) but ${tensor.data.length} values`,
    );
  }
}

/**
 * Decodes `count` elements of a dtype from raw file bytes into a new, owned
 * typed array. The bytes need no alignment and are copied. float16 and
 * bfloat16 are widened to float32 bit for bit.
 */
export function decodeElements(
  dtype: HostDtype,
  raw: Uint8Array,
  littleEndian = true,
): HostTensorData {
  const size = DTYPES[dtype].bytes;
  const count = raw.length / size;
  const copy = new Uint8Array(raw.length);
  copy.set(raw);
  if (littleEndian !== HOST_IS_LITTLE_ENDIAN) swapBytes(copy, size);

  if (dtype === 'float16' || dtype === 'bfloat16') {
    const halves = new Uint16Array(copy.buffer, 0, count);
    const out = new Float32Array(count);
    const outBits = new Uint32Array(out.buffer);
    const widen =
      dtype === 'float16'
        ? float16BitsToFloat32Bits
        : bfloat16BitsToFloat32Bits;
    for (let i = 0; i < count; i++) outBits[i] = widen(halves[i]);
    return out;
  }
  const ArrayType = DTYPES[dtype].array as unknown as {
    new (buffer: ArrayBuffer, offset: number, length: number): HostTensorData;
  };
  return new ArrayType(copy.buffer, 0, count);
}

/**
 * Encodes a tensor's values as little-endian file bytes. float16 and
 * bfloat16 are narrowed from their Float32Array with round to nearest even,
 * which is exact for values that were read from those dtypes.
 */
export function encodeElements(tensor: HostTensor): Uint8Array {
  const { dtype, data } = tensor;
  const size = DTYPES[dtype].bytes;
  if (dtype === 'float16' || dtype === 'bfloat16') {
    const floatBits = new Uint32Array(
      data.buffer,
      data.byteOffset,
      data.length,
    );
    const halves = new Uint16Array(data.length);
    const narrow =
      dtype === 'float16'
        ? float32BitsToFloat16Bits
        : float32BitsToBfloat16Bits;
    for (let i = 0; i < data.length; i++) halves[i] = narrow(floatBits[i]);
    const bytes = new Uint8Array(halves.buffer);
    if (!HOST_IS_LITTLE_ENDIAN) swapBytes(bytes, size);
    return bytes;
  }
  const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (HOST_IS_LITTLE_ENDIAN) return view;
  const bytes = view.slice();
  swapBytes(bytes, size);
  return bytes;
}

/**
 * Converts a tensor's values to float32, the runtime's only device dtype.
 * int64 and uint64 values past 2^24 and float64 values lose precision.
 */
export function toFloat32(tensor: HostTensor): Float32Array {
  const { data } = tensor;
  if (data instanceof Float32Array) return data;
  const out = new Float32Array(data.length);
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    for (let i = 0; i < data.length; i++) out[i] = Number(data[i]);
  } else {
    out.set(data);
  }
  return out;
}

function swapBytes(bytes: Uint8Array, size: number): void {
  if (size === 1) return;
  for (let start = 0; start < bytes.length; start += size) {
    bytes.subarray(start, start + size).reverse();
  }
}
