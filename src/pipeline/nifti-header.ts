// NIfTI-1 and NIfTI-2 header fields: parsing (through nifti-reader-js) and
// encoding. Byte offsets follow nifti1.h and nifti2.h.

import { NIFTI1, NIFTI2 } from 'nifti-reader-js';
import { NiftiError } from './nifti-types.js';

export const NIFTI1_HEADER_BYTES = 348;
export const NIFTI2_HEADER_BYTES = 540;

// The NIfTI-2 magic "n+2\0" is followed by \r\n\032\n, which a text-mode
// transfer would damage.
const NIFTI2_MAGIC = [0x6e, 0x2b, 0x32, 0x00, 0x0d, 0x0a, 0x1a, 0x0a];

/** The header fields this library uses, in file units. */
export interface NiftiHeader {
  version: 1 | 2;
  littleEndian: boolean;
  /** dim[0..7] as stored. */
  dim: number[];
  datatypeCode: number;
  bitpix: number;
  /** pixdim[0..7] as stored. pixdim[0] stores qfac. */
  pixdim: number[];
  voxOffset: number;
  sclSlope: number;
  sclInter: number;
  intentCode: number;
  description: string;
  qformCode: number;
  sformCode: number;
  /** quatern_b, quatern_c, quatern_d. */
  quaternion: [number, number, number];
  /** qoffset_x, qoffset_y, qoffset_z in mm. */
  qoffset: [number, number, number];
  /** srow_x, srow_y, srow_z: the sform's three rows of four. */
  srow: number[];
  xyztUnits: number;
}

/** Returns 1 or 2 for a NIfTI-1 or NIfTI-2 sizeof_hdr, in either byte order. */
function detectVersion(
  bytes: Uint8Array,
): { version: 1 | 2; littleEndian: boolean } | undefined {
  if (bytes.length < 4) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, 4);
  for (const littleEndian of [true, false]) {
    const size = view.getInt32(0, littleEndian);
    if (size === NIFTI1_HEADER_BYTES) return { version: 1, littleEndian };
    if (size === NIFTI2_HEADER_BYTES) return { version: 2, littleEndian };
  }
  return undefined;
}

/**
 * Parses the header at the start of `bytes` (which may be a prefix of the
 * file). Checks the header's own size and magic; the caller checks dims,
 * datatype and offsets. `available` describes the bytes in messages.
 */
export function parseHeader(
  bytes: Uint8Array,
  source: string,
  available = `the file has ${bytes.length} bytes`,
): NiftiHeader {
  if (bytes.length < 4) {
    throw new NiftiError(
      source,
      `cut-short header: ${available}, but a NIfTI-1 header needs ` +
        `${NIFTI1_HEADER_BYTES}`,
    );
  }
  const detected = detectVersion(bytes);
  if (!detected) {
    const size = new DataView(bytes.buffer, bytes.byteOffset, 4).getInt32(
      0,
      true,
    );
    throw new NiftiError(
      source,
      `not a NIfTI file: sizeof_hdr is ${size} (expected 348 for NIfTI-1 ` +
        `or 540 for NIfTI-2, little- or big-endian)`,
    );
  }
  const size =
    detected.version === 1 ? NIFTI1_HEADER_BYTES : NIFTI2_HEADER_BYTES;
  if (bytes.length < size) {
    throw new NiftiError(
      source,
      `cut-short header: ${available}, but a NIfTI-${detected.version} ` +
        `header needs ${size}`,
    );
  }
  // A private copy of exactly the header: nifti-reader-js then reads no
  // extensions (this library skips them) and cannot index past the end.
  const copy = bytes.slice(0, size);
  const view = new DataView(copy.buffer);
  checkMagic(copy, detected.version, source);
  return detected.version === 1
    ? parseNifti1(copy, view, detected.littleEndian, source)
    : parseNifti2(copy, view, detected.littleEndian, source);
}

function checkMagic(header: Uint8Array, version: 1 | 2, source: string): void {
  if (version === 1) {
    const magic = String.fromCharCode(...header.subarray(344, 348));
    if (magic === 'n+1\0') return;
    if (magic === 'ni1\0') {
      throw new NiftiError(
        source,
        'header of a .hdr/.img pair (magic "ni1"); only single-file ' +
          '.nii and .nii.gz are supported',
      );
    }
    throw new NiftiError(
      source,
      `not a NIfTI-1 file: magic is ${JSON.stringify(magic)}, expected ` +
        '"n+1" (a header without it is Analyze 7.5, which is not supported)',
    );
  }
  const magic = header.subarray(4, 12);
  if (magic[0] === 0x6e && magic[1] === 0x69 && magic[2] === 0x32) {
    throw new NiftiError(
      source,
      'header of a .hdr/.img pair (magic "ni2"); only single-file ' +
        '.nii and .nii.gz are supported',
    );
  }
  if (!NIFTI2_MAGIC.every((byte, i) => magic[i] === byte)) {
    throw new NiftiError(
      source,
      `not a NIfTI-2 file: magic bytes are [${magic.join(', ')}], ` +
        `expected [${NIFTI2_MAGIC.join(', ')}] (damaged by a text-mode ` +
        'transfer?)',
    );
  }
}

function readFields<T extends NIFTI1 | NIFTI2>(
  reader: T,
  header: Uint8Array,
  source: string,
): T {
  try {
    reader.readHeader(header.buffer as ArrayBuffer);
  } catch (error) {
    throw new NiftiError(source, `invalid header: ${String(error)}`, {
      cause: error,
    });
  }
  return reader;
}

/** Decodes a NUL-terminated ASCII field. */
function readString(header: Uint8Array, start: number, length: number): string {
  const field = header.subarray(start, start + length);
  const end = field.indexOf(0);
  return String.fromCharCode(...(end < 0 ? field : field.subarray(0, end)));
}

function parseNifti1(
  header: Uint8Array,
  view: DataView,
  littleEndian: boolean,
  source: string,
): NiftiHeader {
  const fields = readFields(new NIFTI1(), header, source);
  // nifti-reader-js folds srow into its own choice of affine, so the rows
  // are read here.
  const srow: number[] = [];
  for (let i = 0; i < 12; i++) {
    srow.push(view.getFloat32(280 + 4 * i, littleEndian));
  }
  return {
    version: 1,
    littleEndian: fields.littleEndian,
    dim: [...fields.dims],
    datatypeCode: fields.datatypeCode,
    bitpix: fields.numBitsPerVoxel,
    pixdim: [...fields.pixDims],
    voxOffset: fields.vox_offset,
    sclSlope: fields.scl_slope,
    sclInter: fields.scl_inter,
    intentCode: fields.intent_code,
    description: readString(header, 148, 80),
    qformCode: fields.qform_code,
    sformCode: fields.sform_code,
    quaternion: [fields.quatern_b, fields.quatern_c, fields.quatern_d],
    qoffset: [fields.qoffset_x, fields.qoffset_y, fields.qoffset_z],
    srow,
    xyztUnits: fields.xyzt_units,
  };
}

// int64 fields are read here because nifti-reader-js 0.8 decodes negative
// values wrongly, and in big-endian files also values of 2^31 or more.
function readInt64(
  view: DataView,
  offset: number,
  littleEndian: boolean,
): number {
  const value = view.getBigInt64(offset, littleEndian);
  const safe = BigInt(Number.MAX_SAFE_INTEGER);
  if (value > safe) return Infinity;
  if (value < -safe) return -Infinity;
  return Number(value);
}

function parseNifti2(
  header: Uint8Array,
  view: DataView,
  littleEndian: boolean,
  source: string,
): NiftiHeader {
  const fields = readFields(new NIFTI2(), header, source);
  const dim: number[] = [];
  for (let i = 0; i < 8; i++) {
    dim.push(readInt64(view, 16 + 8 * i, littleEndian));
  }
  const srow: number[] = [];
  for (let i = 0; i < 12; i++) {
    srow.push(view.getFloat64(400 + 8 * i, littleEndian));
  }
  return {
    version: 2,
    littleEndian: fields.littleEndian,
    dim,
    datatypeCode: fields.datatypeCode,
    bitpix: fields.numBitsPerVoxel,
    pixdim: [...fields.pixDims],
    voxOffset: readInt64(view, 168, littleEndian),
    sclSlope: fields.scl_slope,
    sclInter: fields.scl_inter,
    intentCode: fields.intent_code,
    description: readString(header, 240, 80),
    qformCode: fields.qform_code,
    sformCode: fields.sform_code,
    quaternion: [fields.quatern_b, fields.quatern_c, fields.quatern_d],
    qoffset: [fields.qoffset_x, fields.qoffset_y, fields.qoffset_z],
    srow,
    xyztUnits: fields.xyzt_units,
  };
}

function writeString(
  out: Uint8Array,
  start: number,
  length: number,
  text: string,
): void {
  // Room for a terminating NUL; non-ASCII characters become "?".
  const count = Math.min(text.length, length - 1);
  for (let i = 0; i < count; i++) {
    const code = text.charCodeAt(i);
    out[start + i] = code >= 0x20 && code < 0x7f ? code : 0x3f;
  }
}

/**
 * Encodes a header followed by a 4-byte extension flag of zero, so the data
 * start at `header.voxOffset`, which must be at least 352 (NIfTI-1) or 544
 * (NIfTI-2).
 */
export function encodeHeader(header: NiftiHeader): Uint8Array {
  return header.version === 1 ? encodeNifti1(header) : encodeNifti2(header);
}

function encodeNifti1(header: NiftiHeader): Uint8Array {
  const out = new Uint8Array(NIFTI1_HEADER_BYTES + 4);
  const view = new DataView(out.buffer);
  const le = header.littleEndian;
  view.setInt32(0, NIFTI1_HEADER_BYTES, le);
  out[38] = 0x72; // "regular" = 'r', for Analyze readers
  for (let i = 0; i < 8; i++) view.setInt16(40 + 2 * i, header.dim[i], le);
  view.setInt16(68, header.intentCode, le);
  view.setInt16(70, header.datatypeCode, le);
  view.setInt16(72, header.bitpix, le);
  for (let i = 0; i < 8; i++) view.setFloat32(76 + 4 * i, header.pixdim[i], le);
  view.setFloat32(108, header.voxOffset, le);
  view.setFloat32(112, header.sclSlope, le);
  view.setFloat32(116, header.sclInter, le);
  out[123] = header.xyztUnits;
  writeString(out, 148, 80, header.description);
  view.setInt16(252, header.qformCode, le);
  view.setInt16(254, header.sformCode, le);
  for (let i = 0; i < 3; i++) {
    view.setFloat32(256 + 4 * i, header.quaternion[i], le);
    view.setFloat32(268 + 4 * i, header.qoffset[i], le);
  }
  for (let i = 0; i < 12; i++) view.setFloat32(280 + 4 * i, header.srow[i], le);
  out.set([0x6e, 0x2b, 0x31, 0x00], 344);
  return out;
}

function encodeNifti2(header: NiftiHeader): Uint8Array {
  const out = new Uint8Array(NIFTI2_HEADER_BYTES + 4);
  const view = new DataView(out.buffer);
  const le = header.littleEndian;
  view.setInt32(0, NIFTI2_HEADER_BYTES, le);
  out.set(NIFTI2_MAGIC, 4);
  view.setInt16(12, header.datatypeCode, le);
  view.setInt16(14, header.bitpix, le);
  for (let i = 0; i < 8; i++) {
    view.setBigInt64(16 + 8 * i, BigInt(header.dim[i]), le);
    view.setFloat64(104 + 8 * i, header.pixdim[i], le);
  }
  view.setBigInt64(168, BigInt(header.voxOffset), le);
  view.setFloat64(176, header.sclSlope, le);
  view.setFloat64(184, header.sclInter, le);
  writeString(out, 240, 80, header.description);
  view.setInt32(344, header.qformCode, le);
  view.setInt32(348, header.sformCode, le);
  for (let i = 0; i < 3; i++) {
    view.setFloat64(352 + 8 * i, header.quaternion[i], le);
    view.setFloat64(376 + 8 * i, header.qoffset[i], le);
  }
  for (let i = 0; i < 12; i++) view.setFloat64(400 + 8 * i, header.srow[i], le);
  view.setInt32(500, header.xyztUnits, le);
  view.setInt32(504, header.intentCode, le);
  return out;
}
