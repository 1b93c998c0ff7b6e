// NIfTI writing: a volume to .nii or .nii.gz bytes that keep its affine.

import { gzipSync } from 'fflate';
import { log } from '../log.js';
import { isSingular, qformFromAffine } from './nifti-affine.js';
import { encodeVoxels, findUnrepresentable } from './nifti-data.js';
import {
  NIFTI1_HEADER_BYTES,
  NIFTI2_HEADER_BYTES,
  encodeHeader,
  type NiftiHeader,
} from './nifti-header.js';
import {
  DATATYPES,
  NiftiError,
  datatypeByName,
  type DatatypeInfo,
} from './nifti-types.js';
import {
  spacingFromAffine,
  voxelCount,
  type NiftiDatatype,
  type Volume,
} from './volume.js';

export interface WriteNiftiOptions {
  /** Compress as .nii.gz (true) or write plain .nii (false). */
  gzip: boolean;
  /**
   * Stored datatype; float32 unless set. Integer types require every
   * value to be an integer in the type's range.
   */
  datatype?: NiftiDatatype;
  /**
   * Store a label map in the smallest of uint8, int16 and int32 that fits
   * all values, which must be integers. Cannot be combined with `datatype`.
   */
  labels?: boolean;
  /**
   * NIfTI-1 (348-byte header) or NIfTI-2 (540 bytes, 64-bit sizes). The
   * default is 1 unless a size exceeds NIfTI-1's limit of 32767.
   */
  version?: 1 | 2;
}

/** Options of `encodeNifti`, which tests use to build big-endian files. */
export interface EncodeNiftiOptions extends WriteNiftiOptions {
  littleEndian?: boolean;
}

const SOURCE = 'writeNifti';

// NIFTI_UNITS_MM in xyzt_units: spatial sizes are in millimetres.
const UNITS_MM = 2;

// NIFTI_XFORM_ALIGNED_ANAT: the code written when the volume names none.
const DEFAULT_XFORM_CODE = 2;

const NIFTI1_MAX_SIZE = 32767;

/**
 * Encodes a volume as NIfTI bytes, gzip-compressed if requested.
 *
 * The header keeps the volume's affine exactly in the sform (as float32 in
 * NIfTI-1, float64 in NIfTI-2) and also writes a qform derived from it, so
 * readers that use either see the same grid. Codes: sform_code is the
 * volume's sformCode, else its qformCode, else 2 (aligned anatomical);
 * qform_code is the volume's qformCode, else the sform_code. A volume with
 * both codes 0 and the pixdim diagonal as its affine keeps both codes 0.
 *
 * NOTE: an affine with shear (columns not orthogonal within
 * SHEAR_TOLERANCE) has no quaternion form, so the file gets qform_code 0
 * and only the sform describes the grid. Scaling (scl_slope) is never
 * written: the data are stored as they are. A 4D series gets a time step
 * (pixdim[4]) of 1, because a Volume does not carry one.
 */
export function writeNifti(
  volume: Volume,
  options: WriteNiftiOptions,
): Uint8Array {
  return encodeNifti(volume, options);
}

/** Like `writeNifti`, and can also write big-endian files. */
export function encodeNifti(
  volume: Volume,
  options: EncodeNiftiOptions,
): Uint8Array {
  checkVolume(volume);
  const type = chooseDatatype(volume.data, options);
  const version = chooseVersion(volume.dims, options.version);
  const littleEndian = options.littleEndian ?? true;
  const header = buildHeader(volume, type, version, littleEndian);

  const headerBytes = encodeHeader(header);
  const voxels = encodeVoxels(volume.data, type, littleEndian);
  const file = new Uint8Array(headerBytes.length + voxels.length);
  file.set(headerBytes);
  file.set(voxels, headerBytes.length);
  // mtime 0 keeps the output reproducible.
  return options.gzip ? gzipSync(file, { mtime: 0 }) : file;
}

function checkVolume(volume: Volume): void {
  const { dims, data, affine } = volume;
  if (
    !Array.isArray(dims) ||
    dims.length < 3 ||
    dims.length > 5 ||
    !dims.every((size) => Number.isInteger(size) && size >= 1)
  ) {
    throw new NiftiError(
      SOURCE,
      `dims [${String(dims)}] must be 3 to 5 positive integers ` +
        `([nx, ny, nz], then time and vector component)`,
    );
  }
  if (!(data instanceof Float32Array) || data.length !== voxelCount(dims)) {
    const length = data instanceof Float32Array ? data.length : 'no';
    throw new NiftiError(
      SOURCE,
      `data must be a Float32Array of ${voxelCount(dims)} values for dims ` +
        `[${dims.join(', ')}]; got ${length} values`,
    );
  }
  checkAffine(affine);
  const intent = volume.intentCode ?? 0;
  if (!Number.isInteger(intent) || intent < 0 || intent > 32767) {
    throw new NiftiError(
      SOURCE,
      `intentCode is ${intent}; expected an integer from 0 to 32767`,
    );
  }
  if (volume.spacing) {
    const expected = spacingFromAffine(affine);
    const off = volume.spacing.some(
      (size, axis) =>
        !(Math.abs(size - expected[axis]) <= 1e-4 * expected[axis]),
    );
    if (off) {
      throw new NiftiError(
        SOURCE,
        `spacing [${volume.spacing.join(', ')}] disagrees with the ` +
          `affine's column lengths [${expected.join(', ')}]; update one ` +
          `to match the other`,
      );
    }
  }
}

function checkAffine(affine: Float64Array): void {
  const valid =
    affine instanceof Float64Array &&
    affine.length === 16 &&
    affine.every(Number.isFinite);
  if (!valid) {
    throw new NiftiError(
      SOURCE,
      'affine must be a Float64Array of 16 finite values (column-major 4x4)',
    );
  }
  const bottom = [affine[3], affine[7], affine[11], affine[15]];
  if (!bottom.every((value, i) => value === (i === 3 ? 1 : 0))) {
    throw new NiftiError(
      SOURCE,
      `affine's bottom row is [${bottom.join(', ')}]; expected [0, 0, 0, 1]`,
    );
  }
  if (isSingular(affine)) {
    throw new NiftiError(
      SOURCE,
      `affine's linear part is singular (column lengths ` +
        `[${spacingFromAffine(affine).join(', ')}]), so it maps no grid`,
    );
  }
}

function chooseDatatype(
  data: Float32Array,
  options: WriteNiftiOptions,
): DatatypeInfo {
  if (options.labels && options.datatype) {
    throw new NiftiError(
      SOURCE,
      `options.labels chooses the datatype, so options.datatype ` +
        `("${options.datatype}") cannot be given as well`,
    );
  }
  if (options.labels) return labelDatatype(data);
  const type = datatypeByName(options.datatype ?? 'float32', SOURCE);
  const problem = findUnrepresentable(data, type);
  if (problem) throw new NiftiError(SOURCE, problem);
  return type;
}

/** Returns uint8, int16 or int32, whichever is smallest for the labels. */
function labelDatatype(data: Float32Array): DatatypeInfo {
  let min = 0;
  let max = 0;
  for (let i = 0; i < data.length; i++) {
    const value = data[i];
    if (!Number.isInteger(value)) {
      throw new NiftiError(
        SOURCE,
        `labels: value ${value} at index ${i} is not an integer`,
      );
    }
    if (value < min) min = value;
    if (value > max) max = value;
  }
  for (const name of ['uint8', 'int16', 'int32']) {
    const type = DATATYPES.find((candidate) => candidate.name === name)!;
    if (min >= type.min && max <= type.max) return type;
  }
  throw new NiftiError(
    SOURCE,
    `labels: values from ${min} to ${max} do not fit int32`,
  );
}

function chooseVersion(dims: number[], requested?: 1 | 2): 1 | 2 {
  const largest = Math.max(...dims);
  if (requested === 1 && largest > NIFTI1_MAX_SIZE) {
    throw new NiftiError(
      SOURCE,
      `dims [${dims.join(', ')}] exceed NIfTI-1's size limit of ` +
        `${NIFTI1_MAX_SIZE}; write NIfTI-2 (version: 2)`,
    );
  }
  if (requested !== undefined && requested !== 1 && requested !== 2) {
    throw new NiftiError(SOURCE, `version is ${requested}; expected 1 or 2`);
  }
  return requested ?? (largest > NIFTI1_MAX_SIZE ? 2 : 1);
}

function buildHeader(
  volume: Volume,
  type: DatatypeInfo,
  version: 1 | 2,
  littleEndian: boolean,
): NiftiHeader {
  const { affine, dims } = volume;
  const qform = qformFromAffine(affine);
  // A volume whose source had neither transform (both codes 0) and whose
  // affine is still the diagonal that readers build from pixdim alone
  // keeps codes 0, so it is placed where its source is.
  const unaligned =
    volume.sformCode === 0 && volume.qformCode === 0 && isPixdimDiagonal(affine);
  const spaceCode = unaligned
    ? 0
    : positive(volume.sformCode) ?? positive(volume.qformCode) ?? DEFAULT_XFORM_CODE;
  let qformCode = unaligned ? 0 : positive(volume.qformCode) ?? spaceCode;
  if (!qform.representable) {
    log.info(
      `${SOURCE}: the affine has shear, which a qform cannot represent; ` +
        `writing qform_code 0 and the exact affine in the sform`,
    );
    qformCode = 0;
  }
  const srow: number[] = [];
  for (let row = 0; row < 3; row++) {
    for (let column = 0; column < 4; column++) {
      srow.push(affine[column * 4 + row]);
    }
  }
  const dim = [dims.length, ...dims];
  while (dim.length < 8) dim.push(1);
  const pixdim = [...qform.pixdim, 1, 1, 1, 1];
  return {
    version,
    littleEndian,
    dim,
    datatypeCode: type.code,
    bitpix: type.bytes * 8,
    pixdim,
    voxOffset: (version === 1 ? NIFTI1_HEADER_BYTES : NIFTI2_HEADER_BYTES) + 4,
    sclSlope: 1,
    sclInter: 0,
    intentCode: volume.intentCode ?? 0,
    description: volume.description ?? '',
    qformCode,
    sformCode: spaceCode,
    quaternion: qform.representable ? qform.quaternion : [0, 0, 0],
    qoffset: qform.qoffset,
    srow,
    xyztUnits: UNITS_MM,
  };
}

/**
 * Checks that a column-major 4x4 affine is a diagonal of positive voxel
 * sizes without translation, the grid nifti1.h's "method 1" gives.
 */
function isPixdimDiagonal(affine: ArrayLike<number>): boolean {
  for (let column = 0; column < 4; column++) {
    for (let row = 0; row < 3; row++) {
      const value = affine[column * 4 + row];
      if (row === column ? !(value > 0) : value !== 0) return false;
    }
  }
  return true;
}

function positive(code: number | undefined): number | undefined {
  return code !== undefined && code > 0 ? code : undefined;
}
