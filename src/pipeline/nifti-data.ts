// Conversion of NIfTI voxel bytes to and from float32 values.

import type { DatatypeInfo } from './nifti-types.js';

const HOST_LITTLE_ENDIAN =
  new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

// Largest magnitude up to which float32 represents every integer exactly.
const FLOAT32_EXACT_INTEGERS = 2 ** 24;

type RawArray =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array;

function viewAs(type: DatatypeInfo, buffer: ArrayBuffer): RawArray {
  switch (type.name) {
    case 'uint8':
      return new Uint8Array(buffer);
    case 'int8':
      return new Int8Array(buffer);
    case 'int16':
      return new Int16Array(buffer);
    case 'uint16':
      return new Uint16Array(buffer);
    case 'int32':
      return new Int32Array(buffer);
    case 'uint32':
      return new Uint32Array(buffer);
    case 'float32':
      return new Float32Array(buffer);
    case 'float64':
      return new Float64Array(buffer);
  }
}

/** Reverses the byte order of each `width`-byte element in place. */
function swapBytes(bytes: Uint8Array, width: number): void {
  if (width === 1) return;
  for (let start = 0; start < bytes.length; start += width) {
    for (let low = start, high = start + width - 1; low < high; low++, high--) {
      const byte = bytes[low];
      bytes[low] = bytes[high];
      bytes[high] = byte;
    }
  }
}

export interface DecodeRequest {
  content: Uint8Array;
  offset: number;
  count: number;
  type: DatatypeInfo;
  littleEndian: boolean;
  sclSlope: number;
  sclInter: number;
}

/**
 * Decodes `count` stored values at `offset` to float32, applying
 * value * scl_slope + scl_inter unless scl_slope is 0, NaN or infinite
 * (which the standard defines as no scaling). Returns warnings about
 * precision lost on the way.
 */
export function decodeVoxels(request: DecodeRequest): {
  data: Float32Array;
  warnings: string[];
} {
  const { content, offset, count, type, littleEndian } = request;
  const warnings: string[] = [];
  // slice() copies into a fresh, aligned buffer that may be swapped freely.
  const raw = content.slice(offset, offset + count * type.bytes);
  if (littleEndian !== HOST_LITTLE_ENDIAN) swapBytes(raw, type.bytes);
  const stored = viewAs(type, raw.buffer);

  if (type.name === 'int32' || type.name === 'uint32') {
    let largest = 0;
    for (let i = 0; i < stored.length; i++) {
      largest = Math.max(largest, Math.abs(stored[i]));
    }
    if (largest > FLOAT32_EXACT_INTEGERS) {
      warnings.push(
        `${type.name} values up to ${largest} exceed 2^24 and are rounded ` +
          `to float32`,
      );
    }
  }

  const data = new Float32Array(count);
  const slope = request.sclSlope;
  const scaled = Number.isFinite(slope) && slope !== 0;
  const inter = Number.isFinite(request.sclInter) ? request.sclInter : 0;
  if (scaled && !Number.isFinite(request.sclInter)) {
    warnings.push(`scl_inter is ${request.sclInter}; using 0`);
  }
  if (!scaled || (slope === 1 && inter === 0)) {
    data.set(stored);
  } else {
    for (let i = 0; i < count; i++) data[i] = stored[i] * slope + inter;
  }
  return { data, warnings };
}

/**
 * Describes the first value that `type` cannot store exactly, or returns
 * null when every value fits.
 */
export function findUnrepresentable(
  data: Float32Array,
  type: DatatypeInfo,
): string | null {
  if (!type.integer) return null;
  for (let i = 0; i < data.length; i++) {
    const value = data[i];
    if (!Number.isInteger(value) || value < type.min || value > type.max) {
      return (
        `value ${value} at index ${i} does not fit ${type.name}, which ` +
        `holds integers from ${type.min} to ${type.max}`
      );
    }
  }
  return null;
}

/** Encodes float32 values as `type`, in the requested byte order. */
export function encodeVoxels(
  data: Float32Array,
  type: DatatypeInfo,
  littleEndian: boolean,
): Uint8Array {
  const buffer = new ArrayBuffer(data.length * type.bytes);
  viewAs(type, buffer).set(data);
  const bytes = new Uint8Array(buffer);
  if (littleEndian !== HOST_LITTLE_ENDIAN) swapBytes(bytes, type.bytes);
  return bytes;
}
