// Builders of NIfTI test files in code, shared by the NIfTI tests.

import { gzipSync } from 'fflate';
import { expect } from 'vitest';
import { encodeHeader, type NiftiHeader } from '../src/pipeline/nifti-header.js';
import { NiftiError } from '../src/pipeline/nifti-types.js';

/** Returns a valid little-endian NIfTI-1 header of a float32 3x5x7 grid. */
export function makeHeader(overrides: Partial<NiftiHeader> = {}): NiftiHeader {
  return {
    version: 1,
    littleEndian: true,
    dim: [3, 3, 5, 7, 1, 1, 1, 1],
    datatypeCode: 16,
    bitpix: 32,
    pixdim: [1, 1.5, 2, 2.5, 1, 1, 1, 1],
    voxOffset: 352,
    sclSlope: 1,
    sclInter: 0,
    intentCode: 0,
    description: '',
    qformCode: 0,
    sformCode: 0,
    quaternion: [0, 0, 0],
    qoffset: [0, 0, 0],
    srow: [1.5, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2.5, 0],
    xyztUnits: 2,
    ...overrides,
  };
}

/** Concatenates an encoded header, padding up to vox_offset, and data. */
export function makeFile(header: NiftiHeader, data?: Uint8Array): Uint8Array {
  const headerBytes = encodeHeader(header);
  const count = header.dim
    .slice(1, header.dim[0] + 1)
    .reduce((product, size) => product * size, 1);
  const payload = data ?? new Uint8Array(count * (header.bitpix / 8));
  const start = Math.max(header.voxOffset, headerBytes.length);
  const file = new Uint8Array(start + payload.length);
  file.set(headerBytes);
  file.set(payload, start);
  return file;
}

/** Little-endian float32 bytes of the values. */
export function float32Bytes(values: ArrayLike<number>): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}

/** Gzip with a fixed mtime, so the bytes are reproducible. */
export function gzip(bytes: Uint8Array): Uint8Array {
  return gzipSync(bytes, { mtime: 0 });
}

/** Runs fn, asserts it throws a NiftiError, and returns that error. */
export function niftiErrorOf(fn: () => unknown): NiftiError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught, 'expected a NiftiError').toBeInstanceOf(NiftiError);
  return caught as NiftiError;
}

/** Returns column `index` (0..3) of a column-major 4x4 matrix. */
export function column(affine: ArrayLike<number>, index: number): number[] {
  return plain([0, 1, 2].map((row) => affine[index * 4 + row]));
}

/** Copies values to a plain array with -0 turned into 0 (for toEqual). */
export function plain(values: ArrayLike<number>): number[] {
  return Array.from(values, (value) => value + 0);
}
