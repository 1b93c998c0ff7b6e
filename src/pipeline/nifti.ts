// NIfTI-1 and NIfTI-2 reading and writing, plain and gzip-compressed, on
// byte arrays (no file system), for Node and browsers.
//
// NOTE: header extensions are skipped on read and never written, and
// .hdr/.img pairs are not supported.

import { log } from '../log.js';
import { inflateGzip, isGzip, type InflateResult } from './gzip.js';
import { chooseAffine } from './nifti-affine.js';
import { decodeVoxels } from './nifti-data.js';
import {
  NIFTI1_HEADER_BYTES,
  NIFTI2_HEADER_BYTES,
  parseHeader,
  type NiftiHeader,
} from './nifti-header.js';
import {
  MAX_INPUT_BYTES,
  MAX_VOXELS,
  NiftiError,
  datatypeByCode,
  type DatatypeInfo,
} from './nifti-types.js';
import { spacingFromAffine, voxelCount, type Volume } from './volume.js';

export { writeNifti } from './nifti-write.js';
export type { WriteNiftiOptions } from './nifti-write.js';
export { NiftiError } from './nifti-types.js';

export interface ReadNiftiOptions {
  /** File name for error messages and warnings; defaults to "readNifti". */
  name?: string;
}

// Deflate expands at most 1032:1 (258 bytes per 2-bit code), so a gzip
// stream of n bytes cannot hold more than about 1032 * n.
const MAX_DEFLATE_RATIO = 1032;

// A gzip stream is decompressed this far past the image data, so that the
// trailer check (CRC-32) covers files that end with the image, as nearly
// all do.
const TRAILER_SLACK_BYTES = 1 << 20;

interface Layout {
  dims: number[];
  type: DatatypeInfo;
  count: number;
  offset: number;
  end: number;
  warnings: string[];
}

/**
 * Reads a NIfTI-1 or NIfTI-2 volume from .nii or .nii.gz bytes (gzip is
 * detected by its magic number, not by name). Supports uint8, int8, int16,
 * uint16, int32, uint32, float32 and float64 data, applies scl_slope and
 * scl_inter, and chooses the affine from sform, qform or pixdim (see
 * `chooseAffine`). Throws a NiftiError naming the file and the problem for
 * invalid, truncated or unsupported input; checks every size before
 * allocating.
 */
export function readNifti(
  bytes: Uint8Array,
  options: ReadNiftiOptions = {},
): Volume {
  const source = options.name ?? 'readNifti';
  if (!(bytes instanceof Uint8Array)) {
    throw new NiftiError(source, 'expected the file contents as a Uint8Array');
  }
  const gzipped = isGzip(bytes);
  const header = readHeaderPrefix(bytes, gzipped, source);
  const layout = checkLayout(header, source);
  const content = gzipped
    ? inflateContent(bytes, layout, source)
    : checkPlainLength(bytes, layout, source);

  const decoded = decodeVoxels({
    content,
    offset: layout.offset,
    count: layout.count,
    type: layout.type,
    littleEndian: header.littleEndian,
    sclSlope: header.sclSlope,
    sclInter: header.sclInter,
  });
  const choice = chooseAffine(header);
  const warnings = [
    ...layout.warnings,
    ...decoded.warnings,
    ...choice.warnings,
  ];
  for (const warning of warnings) log.warn(`${source}: ${warning}`);

  const volume: Volume = {
    data: decoded.data,
    dims: layout.dims,
    spacing: spacingFromAffine(choice.affine),
    affine: choice.affine,
    datatype: layout.type.name,
    intentCode: header.intentCode,
    sformCode: header.sformCode,
    qformCode: header.qformCode,
  };
  if (header.description) volume.description = header.description;
  if (warnings.length > 0) volume.warnings = warnings;
  return volume;
}

function readHeaderPrefix(
  bytes: Uint8Array,
  gzipped: boolean,
  source: string,
): NiftiHeader {
  if (!gzipped) return parseHeader(bytes, source);
  // The header and its extension flag fit in the first 544 bytes.
  const prefix = inflateGzip(bytes, NIFTI2_HEADER_BYTES + 4);
  const invalid = prefix.failure && prefix.failure !== 'unexpected EOF';
  if (invalid && prefix.data.length < NIFTI1_HEADER_BYTES) {
    throw new NiftiError(
      source,
      `invalid gzip stream (${prefix.failure}) after ` +
        `${prefix.data.length} decompressed bytes, inside the NIfTI header`,
    );
  }
  try {
    return parseHeader(prefix.data, source, describeStream(prefix));
  } catch (error) {
    const cutShort =
      error instanceof NiftiError && error.reason.startsWith('cut-short');
    if (!(error instanceof NiftiError) || cutShort || !prefix.failure) {
      throw error;
    }
    throw new NiftiError(
      source,
      `${error.reason} (and ${describeStream(prefix)})`,
      { cause: error },
    );
  }
}

/** Describes how much a gzip stream yielded, and how it failed. */
function describeStream(result: InflateResult): string {
  const length = result.data.length;
  if (result.failure === 'unexpected EOF') {
    return `the gzip stream ends early after ${length} decompressed bytes`;
  }
  if (result.failure) {
    return (
      `the gzip stream is invalid (${result.failure}) after ${length} ` +
      `decompressed bytes`
    );
  }
  return `the gzip stream decompresses to ${length} bytes`;
}

function describeData(layout: Layout): string {
  const bytes = layout.count * layout.type.bytes;
  return (
    `header says ${layout.dims.join('x')} ${layout.type.name} ` +
    `(${bytes} bytes) at offset ${layout.offset}`
  );
}

function checkLayout(header: NiftiHeader, source: string): Layout {
  const warnings: string[] = [];
  const dims = checkDims(header.dim, source);
  const count = voxelCount(dims);
  const type = datatypeByCode(header.datatypeCode, source);

  if (header.bitpix !== type.bytes * 8) {
    warnings.push(
      `bitpix is ${header.bitpix} but datatype ${type.name} has ` +
        `${type.bytes * 8} bits per voxel; using the datatype`,
    );
  }
  if (count > MAX_VOXELS) {
    throw new NiftiError(
      source,
      `dims [${dims.join(', ')}] hold ${count} voxels; the reader accepts ` +
        `at most ${MAX_VOXELS}`,
    );
  }

  const headerBytes =
    header.version === 1 ? NIFTI1_HEADER_BYTES : NIFTI2_HEADER_BYTES;
  const offset = header.voxOffset;
  if (!Number.isInteger(offset) || offset < headerBytes) {
    throw new NiftiError(
      source,
      `vox_offset is ${offset}; expected an integer of at least ` +
        `${headerBytes}, the size of a NIfTI-${header.version} header`,
    );
  }

  const end = offset + count * type.bytes;
  const layout = { dims, type, count, offset, end, warnings };
  if (end > MAX_INPUT_BYTES) {
    throw new NiftiError(
      source,
      `${describeData(layout)}, ending at byte ${end}; the reader accepts ` +
        `at most ${MAX_INPUT_BYTES}`,
    );
  }
  return layout;
}

/**
 * Validates dim[] and returns the volume's dims: [nx, ny, nz], then the 4th
 * and 5th sizes when the 5th, or the 4th alone, exceeds 1.
 */
function checkDims(dim: number[], source: string): number[] {
  const rank = dim[0];
  if (!Number.isInteger(rank) || rank < 1 || rank > 7) {
    throw new NiftiError(
      source,
      `dim[0] is ${rank}; expected the number of dimensions, 1 to 7`,
    );
  }
  const sizes = dim.slice(1, rank + 1);
  const bad = sizes.findIndex((size) => !Number.isInteger(size) || size < 1);
  if (bad >= 0) {
    throw new NiftiError(
      source,
      `dim[${bad + 1}] is ${sizes[bad]}; each of the ${rank} sizes in dim ` +
        `[${sizes.join(', ')}] must be a positive integer`,
    );
  }
  while (sizes.length < 5) sizes.push(1);
  if (sizes.slice(5).some((size) => size > 1)) {
    throw new NiftiError(
      source,
      `dims [${sizes.join(', ')}] have ${rank} dimensions; only up to 5 ` +
        `(x, y, z, time, vector component) are supported`,
    );
  }
  const dims = sizes.slice(0, 5);
  while (dims.length > 3 && dims[dims.length - 1] === 1) dims.pop();
  return dims;
}

function truncatedError(
  source: string,
  layout: Layout,
  available: string,
): NiftiError {
  return new NiftiError(
    source,
    `truncated: ${describeData(layout)} but ${available}`,
  );
}

/**
 * Adds a warning when the content runs on past the image data. The NIfTI
 * formats define nothing after the image data, so the header's dims or
 * datatype likely describe less than the file contains. `capped` means
 * that reading stopped at a limit, so there may be more.
 */
function warnExtraBytes(layout: Layout, length: number, capped: boolean): void {
  const extra = length - layout.end;
  if (extra <= 0) return;
  layout.warnings.push(
    `${extra}${capped ? ' or more' : ''} bytes follow the image data (${describeData(layout)}) ` +
      'and were not read; if the scan looks wrong, its header\'s dims or datatype ' +
      'describe less than the file contains',
  );
}

function checkPlainLength(
  bytes: Uint8Array,
  layout: Layout,
  source: string,
): Uint8Array {
  if (bytes.length < layout.end) {
    throw truncatedError(source, layout, `the file has ${bytes.length} bytes`);
  }
  warnExtraBytes(layout, bytes.length, false);
  return bytes;
}

function inflateContent(
  bytes: Uint8Array,
  layout: Layout,
  source: string,
): Uint8Array {
  const capacity = bytes.length * MAX_DEFLATE_RATIO + 1024;
  if (layout.end > capacity) {
    throw truncatedError(
      source,
      layout,
      `a gzip stream of ${bytes.length} bytes decompresses to at most ` +
        `${capacity} (deflate expands at most ${MAX_DEFLATE_RATIO}:1)`,
    );
  }
  const limit = Math.min(layout.end + TRAILER_SLACK_BYTES, MAX_INPUT_BYTES);
  const result = inflateGzip(bytes, limit);
  if (result.data.length < layout.end) {
    throw truncatedError(source, layout, describeStream(result));
  }
  if (result.trailerMismatch) {
    throw new NiftiError(
      source,
      'gzip CRC-32 or length check failed: the stream is corrupt or ' +
        'truncated',
    );
  }
  warnExtraBytes(layout, result.data.length, result.data.length >= limit);
  if (result.failure) {
    // The image data are complete; the damage lies after them.
    layout.warnings.push(
      `gzip stream is invalid after the image data (${result.failure}); ` +
        `the data before it were read`,
    );
  }
  return result.data;
}
