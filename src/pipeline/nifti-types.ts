// NIfTI constants shared by the reader and the writer: datatype codes, the
// size limits the reader enforces, and the error class.

import type { NiftiDatatype } from './volume.js';

/**
 * Invalid, truncated or unsupported NIfTI input, or a volume that cannot be
 * written. The message starts with `source` (the file name, or the function
 * name when there is no file).
 */
export class NiftiError extends Error {
  override readonly name = 'NiftiError';

  constructor(
    readonly source: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${source}: ${reason}`, options);
  }
}

export interface DatatypeInfo {
  name: NiftiDatatype;
  code: number;
  bytes: number;
  /** Smallest and largest value; only meaningful for integer types. */
  min: number;
  max: number;
  integer: boolean;
}

// Datatype codes from the NIfTI-1 standard (nifti1.h, DT_* constants).
export const DATATYPES: readonly DatatypeInfo[] = [
  { name: 'uint8', code: 2, bytes: 1, min: 0, max: 255, integer: true },
  { name: 'int16', code: 4, bytes: 2, min: -32768, max: 32767, integer: true },
  {
    name: 'int32',
    code: 8,
    bytes: 4,
    min: -2147483648,
    max: 2147483647,
    integer: true,
  },
  {
    name: 'float32',
    code: 16,
    bytes: 4,
    min: -Infinity,
    max: Infinity,
    integer: false,
  },
  {
    name: 'float64',
    code: 64,
    bytes: 8,
    min: -Infinity,
    max: Infinity,
    integer: false,
  },
  { name: 'int8', code: 256, bytes: 1, min: -128, max: 127, integer: true },
  { name: 'uint16', code: 512, bytes: 2, min: 0, max: 65535, integer: true },
  {
    name: 'uint32',
    code: 768,
    bytes: 4,
    min: 0,
    max: 4294967295,
    integer: true,
  },
];

// Codes the standard defines but this reader does not decode.
const UNSUPPORTED_DATATYPES: Record<number, string> = {
  1: 'binary (1 bit)',
  32: 'complex64',
  128: 'rgb24',
  1024: 'int64',
  1280: 'uint64',
  1536: 'float128',
  1792: 'complex128',
  2048: 'complex256',
  2304: 'rgba32',
};

const SUPPORTED_NAMES = DATATYPES.map((type) => type.name).join(', ');

/** Returns the datatype with this NIfTI code, or throws a NiftiError. */
export function datatypeByCode(code: number, source: string): DatatypeInfo {
  const found = DATATYPES.find((type) => type.code === code);
  if (found) return found;
  const known = UNSUPPORTED_DATATYPES[code];
  const problem = known
    ? `datatype ${known} (code ${code}) is not supported`
    : `unknown datatype code ${code}`;
  throw new NiftiError(source, `${problem}; supported: ${SUPPORTED_NAMES}`);
}

/** Returns the datatype with this name, or throws a NiftiError. */
export function datatypeByName(name: string, source: string): DatatypeInfo {
  const found = DATATYPES.find((type) => type.name === name);
  if (found) return found;
  throw new NiftiError(
    source,
    `unknown datatype "${name}"; supported: ${SUPPORTED_NAMES}`,
  );
}

/** NIFTI_INTENT_DISPVECT: each voxel contains a displacement vector. */
export const INTENT_DISPLACEMENT_VECTOR = 1006;

/**
 * Largest voxel count the reader allocates: 2^29 values are 2 GiB of
 * float32. Larger headers are rejected before any allocation.
 */
export const MAX_VOXELS = 2 ** 29;

/** Largest decompressed or plain input, in bytes (2 GiB - 1). */
export const MAX_INPUT_BYTES = 2 ** 31 - 1;
