// Mutation fuzzing of readNifti: every mutated file must give a NiftiError
// or a valid volume, quickly, and never another exception.
//
// By default a seeded set of DEFAULT_CASES cases runs. Set NIFTI_FUZZ_CASES
// (such as 2000) for a longer run and NIFTI_FUZZ_SEED to vary the sequence;
// the longer run prints a summary.

import { describe, expect, it } from 'vitest';
import {
  NiftiError,
  createVolume,
  readNifti,
  writeNifti,
  type Volume,
} from '../src/index.js';
import { encodeNifti } from '../src/pipeline/nifti-write.js';
import { Random } from '../src/random.js';
import { float32Bytes, gzip, makeFile, makeHeader } from './nifti-builders.js';

const DEFAULT_CASES = 300;
const CASES = Number(process.env.NIFTI_FUZZ_CASES ?? DEFAULT_CASES);
const SEED = Number(process.env.NIFTI_FUZZ_SEED ?? 1);

// A hang detector, not a benchmark: reading one of these files of under
// 2 KB normally takes well under 10 ms.
const CASE_TIME_LIMIT_MS = 2000;

interface BaseFile {
  label: string;
  bytes: Uint8Array;
  version: 1 | 2;
  voxOffset: number;
}

interface Case {
  label: string;
  bytes: Uint8Array;
}

function obliqueAffine(): Float64Array {
  return Float64Array.of(
    1.2, 0.9, 0, 0,
    -1.2, 1.6, 0, 0,
    0, 0, -2.5, 0,
    -40, 12, 30, 1,
  );
}

/** Returns valid small files of every version, byte order and layout. */
function baseFiles(): BaseFile[] {
  const values = Float32Array.from({ length: 105 }, (_, i) => (i * 37) % 200);
  const volume = createVolume(values, [3, 5, 7], obliqueAffine());
  const vectors = Float32Array.from({ length: 3 * 60 }, (_, i) => Math.sin(i));
  const field = createVolume(vectors, [3, 4, 5, 1, 3], obliqueAffine());
  field.intentCode = 1006;

  const v1 = (label: string, bytes: Uint8Array, voxOffset = 352) => ({
    label,
    bytes,
    version: 1 as const,
    voxOffset,
  });
  const v2 = (label: string, bytes: Uint8Array) => ({
    label,
    bytes,
    version: 2 as const,
    voxOffset: 544,
  });
  const files: BaseFile[] = [
    v1('v1 float32', writeNifti(volume, { gzip: false })),
    v1('v1 uint8', writeNifti(volume, { gzip: false, datatype: 'uint8' })),
    v2(
      'v2 int16',
      writeNifti(volume, { gzip: false, datatype: 'int16', version: 2 }),
    ),
    v1(
      'v1 int32 big-endian',
      encodeNifti(volume, {
        gzip: false,
        datatype: 'int32',
        littleEndian: false,
      }),
    ),
    v2(
      'v2 float64 big-endian',
      encodeNifti(volume, {
        gzip: false,
        datatype: 'float64',
        version: 2,
        littleEndian: false,
      }),
    ),
    v1('v1 vector field', writeNifti(field, { gzip: false })),
  ];

  // A qform-only uint16 file with scaling and a 16-byte extension.
  const header = makeHeader({
    dim: [3, 4, 3, 2, 1, 1, 1, 1],
    datatypeCode: 512,
    bitpix: 16,
    voxOffset: 368,
    sclSlope: 0.5,
    sclInter: 10,
    qformCode: 1,
    quaternion: [0, 0, Math.SQRT1_2],
    qoffset: [1, 2, 3],
    pixdim: [-1, 1.5, 2, 2.5, 1, 1, 1, 1],
  });
  const stored = Uint16Array.from({ length: 24 }, (_, i) => i * 999);
  const extended = makeFile(header, new Uint8Array(stored.buffer));
  extended[348] = 1;
  const view = new DataView(extended.buffer);
  view.setInt32(352, 16, true);
  view.setInt32(356, 4, true);
  files.push(v1('v1 uint16 extension', extended, 368));

  const flatHeader = makeHeader({ dim: [2, 5, 3, 0, 0, 0, 0, 0] });
  const flat = makeFile(flatHeader, float32Bytes(new Array(15).fill(2)));
  files.push(v1('v1 2D', flat));
  return files;
}

type FieldKind = 'int16' | 'int32' | 'int64' | 'float32' | 'float64' | 'uint8';

interface Field {
  name: string;
  offset: number;
  kind: FieldKind;
}

/** Returns the header fields that mutations target, with their offsets. */
function fieldsOf(version: 1 | 2): Field[] {
  const fields: Field[] = [];
  const add = (
    name: string,
    offset: number,
    kind: FieldKind,
    count = 1,
    stride = 0,
  ) => {
    for (let i = 0; i < count; i++) {
      const indexed = count > 1 ? `${name}[${i}]` : name;
      fields.push({ name: indexed, offset: offset + i * stride, kind });
    }
  };
  if (version === 1) {
    add('sizeof_hdr', 0, 'int32');
    add('dim', 40, 'int16', 8, 2);
    add('intent_code', 68, 'int16');
    add('datatype', 70, 'int16');
    add('bitpix', 72, 'int16');
    add('pixdim', 76, 'float32', 8, 4);
    add('vox_offset', 108, 'float32');
    add('scl_slope', 112, 'float32');
    add('scl_inter', 116, 'float32');
    add('qform_code', 252, 'int16');
    add('sform_code', 254, 'int16');
    add('quatern', 256, 'float32', 6, 4);
    add('srow', 280, 'float32', 12, 4);
    add('magic', 344, 'uint8', 4, 1);
    add('extension', 348, 'uint8');
  } else {
    add('sizeof_hdr', 0, 'int32');
    add('magic', 4, 'uint8', 8, 1);
    add('datatype', 12, 'int16');
    add('bitpix', 14, 'int16');
    add('dim', 16, 'int64', 8, 8);
    add('pixdim', 104, 'float64', 8, 8);
    add('vox_offset', 168, 'int64');
    add('scl_slope', 176, 'float64');
    add('scl_inter', 184, 'float64');
    add('qform_code', 344, 'int32');
    add('sform_code', 348, 'int32');
    add('quatern', 352, 'float64', 6, 8);
    add('srow', 400, 'float64', 12, 8);
    add('intent_code', 504, 'int32');
    add('extension', 540, 'uint8');
  }
  return fields;
}

const NASTY_INTEGERS = [
  0, -1, 1, 2, 3, 4, 5, 7, 8, 16, 255, 256, 348, 352, 540, 544, 1006, 32767,
  -32768,
];
const NASTY_WIDE = [2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 62, -(2 ** 63)];
const NASTY_FLOATS = [
  0, -0, 1, -1, 0.5, -2, 352, 352.5, 1e-45, 1e-300, 1e38, 3.4e38, 1e300, NaN,
  Infinity, -Infinity,
];

/** Sets one header field to a boundary or random value; returns a label. */
function mutateField(
  bytes: Uint8Array,
  field: Field,
  random: Random,
  littleEndian: boolean,
): string {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const pick = <T>(list: T[]): T => list[random.integer(list.length)];
  const raw = random.uniform() < 0.2;
  let value: number | bigint;
  switch (field.kind) {
    case 'uint8':
      value = random.integer(256);
      view.setUint8(field.offset, value);
      break;
    case 'int16':
      value = raw ? random.integer(65536) - 32768 : pick(NASTY_INTEGERS);
      view.setInt16(field.offset, value, littleEndian);
      break;
    case 'int32':
      value = raw ? random.nextUint32() | 0 : pick(NASTY_INTEGERS);
      view.setInt32(field.offset, value, littleEndian);
      break;
    case 'int64': {
      const high = BigInt(random.nextUint32()) << 32n;
      value = raw
        ? BigInt.asIntN(64, high | BigInt(random.nextUint32()))
        : BigInt(pick([...NASTY_INTEGERS, ...NASTY_WIDE]));
      view.setBigInt64(field.offset, value, littleEndian);
      break;
    }
    case 'float32':
    case 'float64': {
      const magnitude = 10 ** (random.integer(80) - 40);
      value = raw ? (random.uniform() - 0.5) * magnitude : pick(NASTY_FLOATS);
      if (field.kind === 'float32') {
        view.setFloat32(field.offset, value, littleEndian);
      } else {
        view.setFloat64(field.offset, value, littleEndian);
      }
      break;
    }
  }
  return `${field.name}=${value}`;
}

function isLittleEndian(bytes: Uint8Array): boolean {
  const size = new DataView(bytes.buffer, bytes.byteOffset).getInt32(0, true);
  return size === 348 || size === 540;
}

/** Returns cut points at the header, extension flag and data boundaries. */
function truncationPoints(base: BaseFile, length: number): number[] {
  const header = base.version === 1 ? 348 : 540;
  const offset = base.voxOffset;
  const points = [
    0, 1, 2, 3, 4, 100, header - 1, header, header + 3, offset - 1, offset,
    offset + 1, length - 2, length - 1,
  ];
  return points.filter((point) => point >= 0 && point < length);
}

/** Returns cut points inside the gzip header, deflate data and trailer. */
function gzipTruncationPoints(length: number): number[] {
  const points = [
    0, 1, 2, 3, 9, 10, 11, 20, length >> 1, length - 9, length - 8,
    length - 5, length - 4, length - 1,
  ];
  return points.filter((point) => point >= 0 && point < length);
}

/** Builds one mutated file from a base file. */
function makeCase(base: BaseFile, random: Random): Case {
  const bytes = base.bytes.slice();
  const littleEndian = isLittleEndian(bytes);
  const fields = fieldsOf(base.version);
  const kind = random.integer(6);
  const steps: string[] = [];
  const label = () => `${base.label}: ${steps.join(', ')}`;

  // Kinds 0 and 5 mutate header fields; kind 5 then also truncates.
  if (kind === 0 || kind === 5) {
    const count = 1 + random.integer(3);
    for (let i = 0; i < count; i++) {
      const field = fields[random.integer(fields.length)];
      steps.push(mutateField(bytes, field, random, littleEndian));
    }
  }

  // Kind 1 flips bits, mostly in the header.
  if (kind === 1) {
    const count = 1 + random.integer(8);
    for (let i = 0; i < count; i++) {
      const span = random.uniform() < 0.7 ? base.voxOffset : bytes.length;
      const position = random.integer(Math.min(span, bytes.length));
      const mask = 1 << random.integer(8);
      bytes[position] ^= mask;
      steps.push(`flip ${position}^${mask}`);
    }
  }

  // Kinds 2 and 5 truncate the plain file, then maybe compress it.
  if (kind === 2 || kind === 5) {
    const points = truncationPoints(base, bytes.length);
    const at =
      random.uniform() < 0.8
        ? points[random.integer(points.length)]
        : random.integer(bytes.length);
    steps.push(`cut ${at}`);
    const cut = bytes.slice(0, at);
    if (random.uniform() < 0.5) return { label: label(), bytes: cut };
    steps.push('gzip');
    return { label: label(), bytes: gzip(cut) };
  }

  // Kind 3 truncates the compressed stream, kind 4 corrupts it.
  if (kind === 3) {
    const compressed = gzip(bytes);
    const points = gzipTruncationPoints(compressed.length);
    const at = points[random.integer(points.length)];
    return {
      label: `${base.label}: gzip, cut ${at}`,
      bytes: compressed.slice(0, at),
    };
  }
  if (kind === 4) return corruptGzip(base, gzip(bytes), random);

  if (random.uniform() < 0.5) return { label: label(), bytes };
  steps.push('gzip');
  return { label: label(), bytes: gzip(bytes) };
}

/** Damages a gzip stream: bits, flags, trailer, trailing data or noise. */
function corruptGzip(
  base: BaseFile,
  compressed: Uint8Array,
  random: Random,
): Case {
  const variant = random.integer(6);
  const out = compressed.slice();
  const label = (detail: string) => `${base.label}: gzip, ${detail}`;

  if (variant === 0) {
    const position = random.integer(out.length);
    out[position] ^= 1 << random.integer(8);
    return { label: label(`flip ${position}`), bytes: out };
  }
  if (variant === 1) {
    // FLG claims extra fields, a name or a comment that are not there.
    out[3] = random.integer(256);
    return { label: label(`flags ${out[3]}`), bytes: out };
  }
  if (variant === 2) {
    const position = out.length - 1 - random.integer(8);
    out[position] ^= 0xff;
    return { label: label(`trailer byte ${position}`), bytes: out };
  }

  if (variant === 3) {
    const length = 1 + random.integer(40);
    const joined = new Uint8Array(out.length + length);
    joined.set(out);
    for (let i = out.length; i < joined.length; i++) {
      joined[i] = random.integer(256);
    }
    return { label: label(`${length} bytes appended`), bytes: joined };
  }
  if (variant === 4) {
    const twice = new Uint8Array(out.length * 2);
    twice.set(out);
    twice.set(out, out.length);
    return { label: label('two members'), bytes: twice };
  }

  const noise = new Uint8Array(30 + random.integer(300));
  for (let i = 0; i < noise.length; i++) noise[i] = random.integer(256);
  noise.set([0x1f, 0x8b, 8]);
  return { label: `gzip magic then ${noise.length - 3} random bytes`, bytes: noise };
}

/** Returns what is wrong with a volume, or null when it is valid. */
function checkVolume(volume: Volume): string | null {
  const { dims, data, affine, spacing } = volume;
  const validDims =
    dims.length >= 3 &&
    dims.length <= 5 &&
    dims.every((size) => Number.isInteger(size) && size >= 1);
  if (!validDims) return `invalid dims [${dims.join(', ')}]`;

  const count = dims.reduce((product, size) => product * size, 1);
  if (!(data instanceof Float32Array) || data.length !== count) {
    return `data length ${data.length} does not match dims [${dims}]`;
  }

  const finite =
    affine instanceof Float64Array &&
    affine.length === 16 &&
    affine.every(Number.isFinite);
  if (!finite) return `invalid affine [${Array.from(affine).join(', ')}]`;
  const bottom = [affine[3], affine[7], affine[11], affine[15]];
  if (bottom.join() !== '0,0,0,1') return `affine bottom row is [${bottom}]`;

  const validSpacing =
    spacing.length === 3 &&
    spacing.every((size) => Number.isFinite(size) && size > 0);
  if (!validSpacing) return `invalid spacing [${spacing.join(', ')}]`;
  return null;
}

/** Writes a valid volume back and checks that a second read matches it. */
function checkRewrite(volume: Volume): string | null {
  let bytes: Uint8Array;
  try {
    bytes = writeNifti(volume, { gzip: false, version: 2 });
  } catch (error) {
    if (error instanceof NiftiError) return null;
    return `writeNifti threw ${String(error)}`;
  }

  const again = readNifti(bytes);
  const data = volume.data;
  if (!again.data.every((value, i) => Object.is(value, data[i]))) {
    return 'rewritten data differ';
  }
  if (!again.affine.every((value, i) => value === volume.affine[i])) {
    return 'rewritten affine differs';
  }
  return null;
}

describe('readNifti fuzzing', () => {
  it(`${CASES} mutated files give a NiftiError or a valid volume`, () => {
    const random = new Random(SEED);
    const bases = baseFiles();
    for (const base of bases) {
      expect(checkVolume(readNifti(base.bytes)), base.label).toBeNull();
    }

    const failures: string[] = [];
    let volumes = 0;
    let errors = 0;
    let slowest = 0;
    for (let index = 0; index < CASES; index++) {
      const base = bases[random.integer(bases.length)];
      const testCase = makeCase(base, random);
      const started = performance.now();
      let problem: string | null = null;
      try {
        const volume = readNifti(testCase.bytes, { name: `case ${index}` });
        volumes += 1;
        problem = checkVolume(volume) ?? checkRewrite(volume);
      } catch (error) {
        if (error instanceof NiftiError) {
          errors += 1;
        } else {
          const type = error instanceof Error ? error.name : typeof error;
          problem = `threw ${type}: ${String(error)}`;
        }
      }

      const elapsed = performance.now() - started;
      slowest = Math.max(slowest, elapsed);
      if (elapsed > CASE_TIME_LIMIT_MS) {
        problem ??= `took ${elapsed.toFixed(0)} ms`;
      }
      if (problem) failures.push(`case ${index} (${testCase.label}): ${problem}`);
    }

    if (process.env.NIFTI_FUZZ_CASES) {
      console.log(
        `nifti fuzz: seed ${SEED}, ${CASES} cases, ${volumes} volumes, ` +
          `${errors} NiftiErrors, ${failures.length} failures, ` +
          `slowest ${slowest.toFixed(1)} ms`,
      );
    }
    expect(failures).toEqual([]);
    // Both outcomes occur, so the mutations neither all break the files
    // nor all slip past the reader's checks.
    expect(volumes).toBeGreaterThan(CASES / 20);
    expect(errors).toBeGreaterThan(CASES / 5);
  });
});
