// NIfTI reading and writing: real scans, round trips of every datatype,
// the header rules for choosing the affine, and errors for bad input.

import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  NiftiError,
  axisCodes,
  createVolume,
  displacementFieldToFlow,
  flowToDisplacementField,
  readNifti,
  setLogLevel,
  writeNifti,
  type NiftiDatatype,
  type Volume,
} from '../src/index.js';
import { readNiftiFile, writeNiftiFile } from '../src/node.js';
import { encodeNifti } from '../src/pipeline/nifti-write.js';
import { expectClose } from './helpers.js';
import {
  column,
  float32Bytes,
  gzip,
  makeFile,
  makeHeader,
  niftiErrorOf,
  plain,
} from './nifti-builders.js';

const SHARED = new URL('../../shared/data/', import.meta.url);
const IXI_IDS = [
  'IXI012-HH-1211',
  'IXI013-HH-1212',
  'IXI014-HH-1236',
  'IXI015-HH-1258',
  'IXI033-HH-1259',
  'IXI034-HH-1260',
  'IXI039-HH-1261',
  'IXI048-HH-1326',
  'IXI049-HH-1358',
  'IXI051-HH-1328',
];

function readShared(relative: string): Volume {
  const url = new URL(relative, SHARED);
  return readNifti(new Uint8Array(readFileSync(url)), { name: relative });
}

function distinctValues(data: Float32Array): number[] {
  return [...new Set(data)].sort((a, b) => a - b);
}

function maxOf(data: Float32Array): number {
  let max = -Infinity;
  for (const value of data) max = Math.max(max, value);
  return max;
}

// A rotated, translated grid with unequal voxel sizes (exact in float32).
/** The reader's warning for a file whose sform_code and qform_code are both 0. */
const NO_ORIENTATION =
  'sform_code and qform_code are 0, so the file gives no orientation; the voxel ' +
  'axes are taken as x, y, z (RAS) at the pixdim sizes, and results may come out ' +
  'mirrored or rotated against other scans: set the sform or qform to fix it';

function obliqueAffine(): Float64Array {
  const cos = 0.8;
  const sin = 0.6;
  // Columns: i along (cos, sin, 0) * 1.5, j along (-sin, cos, 0) * 2,
  // k along -z * 2.5 (a left-handed grid, so qfac = -1).
  return Float64Array.of(
    1.5 * cos, 1.5 * sin, 0, 0,
    -2 * sin, 2 * cos, 0, 0,
    0, 0, -2.5, 0,
    -40.5, 12.25, 30, 1,
  );
}

afterEach(() => {
  vi.restoreAllMocks();
  setLogLevel('error');
});

describe('readNifti on IXI brain scans', () => {
  const labelNames = readFileSync(
    new URL('ixi-brain/label-names.csv', SHARED),
    'utf8',
  );
  // The data README lists 149 values: background 0, the 145 regions of
  // label-names.csv, 1 (cortical CSF), and the unnamed 46 and 69.
  const named = labelNames
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => Number(line.split(',')[0]));
  const expectedLabels = [0, 1, 46, 69, ...named].sort((a, b) => a - b);

  it('label list has 149 values', () => {
    expect(named.length).toBe(145);
    expect(new Set(expectedLabels).size).toBe(149);
  });

  for (const id of IXI_IDS) {
    it(`${id} image and labels`, () => {
      const image = readShared(`ixi-brain/images/${id}_t1.nii.gz`);
      expect(image.dims).toEqual([120, 120, 90]);
      expect(image.spacing).toEqual([2, 2, 2]);
      expect(image.datatype).toBe('uint8');
      expect(image.warnings).toBeUndefined();
      // Stored uint8 values reach at most 255; scl_slope restores the
      // real intensities.
      const max = maxOf(image.data);
      expect(max).toBeGreaterThan(3500);
      expect(max).toBeLessThan(5600);
      // Voxel axes point posterior, superior and right.
      expect(axisCodes(image.affine)).toBe('PSR');
      expect(column(image.affine, 0)).toEqual([0, -2, 0]);
      expect(column(image.affine, 1)).toEqual([0, 0, 2]);
      expect(column(image.affine, 2)).toEqual([2, 0, 0]);
      expect(image.sformCode).toBe(1);
      expect(image.qformCode).toBe(1);

      const labels = readShared(`ixi-brain/labels/${id}_labels.nii.gz`);
      expect(labels.dims).toEqual([120, 120, 90]);
      expect(labels.spacing).toEqual([2, 2, 2]);
      expect(plain(labels.affine)).toEqual(plain(image.affine));
      expect(distinctValues(labels.data)).toEqual(expectedLabels);
    });
  }
});

describe('real scans written back', () => {
  it('IXI image and labels round trip', () => {
    const id = IXI_IDS[0];
    const image = readShared(`ixi-brain/images/${id}_t1.nii.gz`);
    const again = readNifti(writeNifti(image, { gzip: true }));
    expect(again.datatype).toBe('float32');
    expect(again.dims).toEqual(image.dims);
    expect(again.data.every((value, i) => value === image.data[i])).toBe(true);
    expect(plain(again.affine)).toEqual(plain(image.affine));
    expect([again.sformCode, again.qformCode]).toEqual([1, 1]);
    expect(again.warnings).toBeUndefined();

    const labels = readShared(`ixi-brain/labels/${id}_labels.nii.gz`);
    const written = writeNifti(labels, { gzip: true, labels: true });
    const labelsAgain = readNifti(written);
    expect(labelsAgain.datatype).toBe('uint8');
    expect(labelsAgain.data.every((value, i) => value === labels.data[i])).toBe(true);
    // The label file has sform_code 2 and no qform; the copy gets both.
    expect([labelsAgain.sformCode, labelsAgain.qformCode]).toEqual([2, 2]);
  });

  it('CT int32 round trip', () => {
    const ct = readShared('ct-abdomen/ct.nii.gz');
    const again = readNifti(writeNifti(ct, { gzip: false, datatype: 'int32' }));
    expect(again.datatype).toBe('int32');
    expect(again.data.every((value, i) => value === ct.data[i])).toBe(true);
    expect(plain(again.affine)).toEqual(plain(ct.affine));
  });
});

describe('readNifti on the abdominal CT', () => {
  // Label values present in the files (TotalSegmentator class ids).
  const ctLabels = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 14, 18, 19, 20, 21, 22, 25, 26, 27,
    28, 29, 30, 31, 32, 33, 52, 63, 64, 65, 66, 67, 68, 75, 76, 77, 78, 79, 80,
    81, 82, 83, 84, 85, 86, 87, 88, 89, 98, 99, 100, 101, 102, 103, 110, 111,
    112, 113, 114, 115, 117,
  ];
  const smallLabels = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 18, 19, 20, 30, 31, 32, 33,
    52, 63, 64, 79, 86, 87, 88, 89, 98, 99, 100, 101, 102, 103, 110, 111, 112,
    113, 114, 115, 117,
  ];

  it('ct int32 grid and labels', () => {
    const ct = readShared('ct-abdomen/ct.nii.gz');
    expect(ct.dims).toEqual([122, 101, 112]);
    expect(ct.datatype).toBe('int32');
    expect(ct.spacing).toEqual([3, 3, 3]);
    expect(ct.sformCode).toBe(2);
    expect(ct.qformCode).toBe(0);
    expect(axisCodes(ct.affine)).toBe('RAS');
    const labels = readShared('ct-abdomen/ct_labels.nii.gz');
    expect(labels.dims).toEqual([122, 101, 112]);
    expect(labels.datatype).toBe('uint8');
    expect(distinctValues(labels.data)).toEqual(ctLabels);
  });

  it('ct_small int16 grid and labels', () => {
    const small = readShared('ct-abdomen/ct_small.nii.gz');
    expect(small.dims).toEqual([122, 101, 30]);
    expect(small.datatype).toBe('int16');
    expect(small.spacing).toEqual([3, 3, 3]);
    expect(small.sformCode).toBe(2);
    expect(small.qformCode).toBe(0);
    const labels = readShared('ct-abdomen/ct_small_labels.nii.gz');
    expect(labels.dims).toEqual([122, 101, 30]);
    expect(distinctValues(labels.data)).toEqual(smallLabels);
  });

  it('ct_small equals the top 30 slices of ct', () => {
    // Same scan decoded from int16 and from int32. The sub-volume's header
    // keeps the full scan's origin, so only the voxels are compared.
    const ct = readShared('ct-abdomen/ct.nii.gz');
    const small = readShared('ct-abdomen/ct_small.nii.gz');
    const slice = 122 * 101;
    const top = ct.data.subarray(82 * slice, 112 * slice);
    expect(top.length).toBe(small.data.length);
    expect(top.every((value, i) => value === small.data[i])).toBe(true);
  });
});

describe('round trip', () => {
  const ranges: Record<NiftiDatatype, number[]> = {
    uint8: [0, 1, 127, 255],
    int8: [-128, -1, 0, 127],
    int16: [-32768, -7, 0, 32767],
    uint16: [0, 9, 40000, 65535],
    int32: [-16777216, -5, 0, 16777216],
    uint32: [0, 3, 70000, 16777216],
    float32: [-1.5e30, -0.25, 0, 3.5e-20],
    float64: [-1e30, -0.125, 0, 7.75],
  };
  const dims = [3, 5, 7];

  function sample(type: NiftiDatatype): Float32Array {
    const values = ranges[type];
    const data = new Float32Array(105);
    for (let i = 0; i < data.length; i++) {
      data[i] = values[i % values.length] + (type.startsWith('float') ? i : 0);
    }
    return data;
  }

  for (const type of Object.keys(ranges) as NiftiDatatype[]) {
    for (const version of [1, 2] as const) {
      for (const gzipped of [false, true]) {
        it(`${type} NIfTI-${version} gzip ${gzipped}`, () => {
          const volume = createVolume(sample(type), dims, obliqueAffine());
          const options = { gzip: gzipped, datatype: type, version };
          const first = readNifti(writeNifti(volume, options));
          expect(first.datatype).toBe(type);
          expect(first.dims).toEqual(dims);
          expect(Array.from(first.data)).toEqual(Array.from(volume.data));
          expect(first.warnings).toBeUndefined();
          // The sform stores float32 in NIfTI-1 and float64 in NIfTI-2.
          const stored = version === 1 ? obliqueAffine().map(Math.fround) : obliqueAffine();
          expect(Array.from(first.affine)).toEqual(Array.from(stored));

          const second = readNifti(writeNifti(first, options));
          expect(Array.from(second.data)).toEqual(Array.from(first.data));
          expect(Array.from(second.affine)).toEqual(Array.from(first.affine));
          expect(second.spacing).toEqual(first.spacing);
        });
      }
    }
  }

  for (const type of Object.keys(ranges) as NiftiDatatype[]) {
    it(`${type} big-endian`, () => {
      const volume = createVolume(sample(type), dims, obliqueAffine());
      for (const version of [1, 2] as const) {
        const bytes = encodeNifti(volume, {
          gzip: false,
          datatype: type,
          version,
          littleEndian: false,
        });
        // sizeof_hdr is stored big-endian.
        expect(bytes[3]).toBe(version === 1 ? 348 - 256 : 540 - 512);
        const read = readNifti(bytes);
        expect(Array.from(read.data)).toEqual(Array.from(volume.data));
        expect(read.dims).toEqual(dims);
      }
    });
  }

  it('float32 data by default', () => {
    const volume = createVolume(Float32Array.of(0.1, 2, 3, 4, 5, 6), [1, 2, 3]);
    const read = readNifti(writeNifti(volume, { gzip: true }));
    expect(read.datatype).toBe('float32');
    expect(Array.from(read.data)).toEqual(Array.from(volume.data));
  });

  it('description and intent code kept', () => {
    const volume = createVolume(new Float32Array(6), [1, 2, 3]);
    volume.description = 'atlas labels';
    volume.intentCode = 1002;
    const read = readNifti(writeNifti(volume, { gzip: false }));
    expect(read.description).toBe('atlas labels');
    expect(read.intentCode).toBe(1002);
  });

  it('4D series keeps its 4th size', () => {
    const data = Float32Array.from({ length: 3 * 5 * 7 * 2 }, (_, i) => i);
    const volume = createVolume(data, [3, 5, 7, 2], obliqueAffine());
    const read = readNifti(writeNifti(volume, { gzip: true }));
    expect(read.dims).toEqual([3, 5, 7, 2]);
    expect(Array.from(read.data)).toEqual(Array.from(data));
  });

  it('sform and qform codes copied', () => {
    const volume = createVolume(new Float32Array(6), [1, 2, 3], obliqueAffine());
    const cases = [
      { sformCode: 1, qformCode: 1, written: [1, 1] },
      { sformCode: 2, qformCode: 0, written: [2, 2] },
      { sformCode: 0, qformCode: 1, written: [1, 1] },
      { sformCode: 4, qformCode: 1, written: [4, 1] },
      { sformCode: undefined, qformCode: undefined, written: [2, 2] },
      // Codes 0 with an oblique affine would lose the affine, so they become 2.
      { sformCode: 0, qformCode: 0, written: [2, 2] },
    ];
    for (const { sformCode, qformCode, written } of cases) {
      const read = readNifti(
        writeNifti({ ...volume, sformCode, qformCode }, { gzip: false }),
      );
      expect([read.sformCode, read.qformCode], `${sformCode}/${qformCode}`).toEqual(written);
    }
  });

  it('codes 0 kept on a pixdim grid', () => {
    // Spacing 2, 3, 4 mm with no rotation and no origin.
    const affine = [2, 0, 0, 0, 0, 3, 0, 0, 0, 0, 4, 0, 0, 0, 0, 1];
    const volume = createVolume(new Float32Array(6), [1, 2, 3], affine);
    const read = readNifti(writeNifti({ ...volume, sformCode: 0, qformCode: 0 }, { gzip: false }));
    expect([read.sformCode, read.qformCode]).toEqual([0, 0]);
    expect(Array.from(read.affine)).toEqual(affine);
    expect(read.spacing).toEqual([2, 3, 4]);
  });

  it('written qform reproduces the affine', () => {
    for (const version of [1, 2] as const) {
      const volume = createVolume(new Float32Array(105), [3, 5, 7], obliqueAffine());
      const bytes = writeNifti(volume, { gzip: false, version });
      // Zero sform_code so that the reader falls back to the qform.
      const view = new DataView(bytes.buffer);
      if (version === 1) view.setInt16(254, 0, true);
      else view.setInt32(348, 0, true);
      const read = readNifti(bytes);
      expect(read.warnings).toBeUndefined();
      expectClose(read.affine, obliqueAffine(), 1e-6, 1e-6, `qform v${version}`);
      // pixdim[0] stores qfac = -1 for this left-handed grid.
      const qfac = version === 1 ? view.getFloat32(76, true) : view.getFloat64(104, true);
      expect(qfac).toBe(-1);
    }
  });

  it('sheared affine writes qform_code 0', () => {
    setLogLevel('info');
    const info = vi.spyOn(console, 'log').mockImplementation(() => {});
    const affine = Float64Array.of(2, 0, 0, 0, 0.5, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1);
    const volume = createVolume(new Float32Array(6), [1, 2, 3], affine);
    const bytes = writeNifti(volume, { gzip: false });
    const view = new DataView(bytes.buffer);
    expect(view.getInt16(252, true)).toBe(0);
    expect(view.getInt16(254, true)).toBe(2);
    const read = readNifti(bytes);
    expect(Array.from(read.affine)).toEqual(Array.from(affine));
    expect(info).toHaveBeenCalledWith(expect.stringContaining('shear'));
  });

  it('labels option picks the smallest type', () => {
    const cases: [number[], NiftiDatatype][] = [
      [[0, 4, 255], 'uint8'],
      [[0, 256], 'int16'],
      [[-1, 3], 'int16'],
      [[0, 40000], 'int32'],
      [[-70000, 16777216], 'int32'],
    ];
    for (const [values, expected] of cases) {
      const volume = createVolume(Float32Array.from([...values, 0, 0, 0].slice(0, 3)), [1, 1, 3]);
      const read = readNifti(writeNifti(volume, { gzip: true, labels: true }));
      expect(read.datatype, values.join(',')).toBe(expected);
      expect(Array.from(read.data)).toEqual(Array.from(volume.data));
    }
  });

  it('labels option rejects non-integers', () => {
    const volume = createVolume(Float32Array.of(0, 1.5, 2), [1, 1, 3]);
    const error = niftiErrorOf(() => writeNifti(volume, { gzip: false, labels: true }));
    expect(error.message).toBe('writeNifti: labels: value 1.5 at index 1 is not an integer');
  });

  it('datatype option rejects values out of range', () => {
    const volume = createVolume(Float32Array.of(0, 300, 2), [1, 1, 3]);
    const error = niftiErrorOf(() => writeNifti(volume, { gzip: false, datatype: 'uint8' }));
    expect(error.message).toBe(
      'writeNifti: value 300 at index 1 does not fit uint8, which holds integers from 0 to 255',
    );
  });

  it('writer rejects inconsistent volumes', () => {
    const volume = createVolume(new Float32Array(6), [1, 2, 3]);
    const short = { ...volume, data: new Float32Array(5) };
    expect(niftiErrorOf(() => writeNifti(short, { gzip: false })).message).toBe(
      'writeNifti: data must be a Float32Array of 6 values for dims [1, 2, 3]; got 5 values',
    );
    const spacing = { ...volume, spacing: [2, 1, 1] as [number, number, number] };
    expect(niftiErrorOf(() => writeNifti(spacing, { gzip: false })).message).toContain(
      "spacing [2, 1, 1] disagrees with the affine's column lengths [1, 1, 1]",
    );
    const flat = createVolume(new Float32Array(6), [1, 2, 3]);
    flat.affine[10] = 0;
    flat.spacing = [1, 1, 0];
    expect(niftiErrorOf(() => writeNifti(flat, { gzip: false })).message).toContain(
      "affine's linear part is singular",
    );
    const projective = createVolume(new Float32Array(6), [1, 2, 3]);
    projective.affine[3] = 0.5;
    expect(niftiErrorOf(() => writeNifti(projective, { gzip: false })).message).toContain(
      "affine's bottom row is [0.5, 0, 0, 1]",
    );
    expect(
      niftiErrorOf(() => writeNifti(volume, { gzip: false, labels: true, datatype: 'int16' }))
        .message,
    ).toContain('cannot be given as well');
  });

  it('int32 beyond 2^24 warns', () => {
    const bytes = makeFile(
      makeHeader({ dim: [3, 1, 1, 2, 1, 1, 1, 1], datatypeCode: 8 }),
      new Uint8Array(Int32Array.of(16777217, 3).buffer),
    );
    const read = readNifti(bytes);
    expect(read.data[0]).toBe(16777216);
    expect(read.warnings).toEqual([
      'int32 values up to 16777217 exceed 2^24 and are rounded to float32',
      NO_ORIENTATION,
    ]);
  });
});

describe('header rules', () => {
  const data = float32Bytes(Array.from({ length: 105 }, (_, i) => i));
  // A rotation of 90 degrees about z: quaternion (a, b, c, d) with
  // a = d = sqrt(1/2); it maps i to +y and j to -x.
  const half = Math.SQRT1_2;

  it('sform used when sform_code > 0', () => {
    const srow = [0, -2, 0, 10, 1.5, 0, 0, 20, 0, 0, 2.5, 30];
    const read = readNifti(makeFile(makeHeader({ sformCode: 1, srow }), data));
    expect(column(read.affine, 0)).toEqual([0, 1.5, 0]);
    expect(column(read.affine, 1)).toEqual([-2, 0, 0]);
    expect(column(read.affine, 3)).toEqual([10, 20, 30]);
    expect(read.spacing).toEqual([1.5, 2, 2.5]);
    expect(read.warnings).toBeUndefined();
  });

  it('singular sform falls back to qform', () => {
    const srow = [1, 2, 0, 0, 2, 4, 0, 0, 0, 0, 1, 0];
    const header = makeHeader({
      sformCode: 1,
      srow,
      qformCode: 1,
      quaternion: [0, 0, half],
      qoffset: [5, 6, 7],
    });
    const read = readNifti(makeFile(header, data));
    expectClose(column(read.affine, 0), [0, 1.5, 0], 0, 1e-6, 'i column');
    expectClose(column(read.affine, 1), [-2, 0, 0], 0, 1e-6, 'j column');
    expectClose(column(read.affine, 2), [0, 0, 2.5], 0, 1e-6, 'k column');
    expect(column(read.affine, 3)).toEqual([5, 6, 7]);
    expect(read.warnings).toEqual(['sform_code is 1 but the sform is singular; ignoring it']);
  });

  it('singular sform without qform uses pixdim', () => {
    const header = makeHeader({ sformCode: 2, srow: new Array(12).fill(0) });
    const read = readNifti(makeFile(header, data));
    expect(Array.from(read.affine)).toEqual([1.5, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2.5, 0, 0, 0, 0, 1]);
    expect(read.warnings).toEqual(['sform_code is 2 but the sform is singular; ignoring it']);
  });

  it('non-finite sform ignored', () => {
    const srow = [NaN, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2.5, 0];
    const read = readNifti(makeFile(makeHeader({ sformCode: 1, srow }), data));
    expect(read.affine[0]).toBe(1.5);
    expect(read.warnings).toEqual([
      'sform_code is 1 but the sform contains a non-finite value; ignoring it',
    ]);
  });

  it('qform used when sform_code is 0', () => {
    const header = makeHeader({ qformCode: 1, quaternion: [0, 0, half], qoffset: [1, 2, 3] });
    const read = readNifti(makeFile(header, data));
    expectClose(column(read.affine, 0), [0, 1.5, 0], 0, 1e-6, 'i column');
    expectClose(column(read.affine, 1), [-2, 0, 0], 0, 1e-6, 'j column');
    expectClose(column(read.affine, 2), [0, 0, 2.5], 0, 1e-6, 'k column');
    expect(axisCodes(read.affine)).toBe('ALS');
    expect(read.spacing.map((size) => Math.fround(size))).toEqual([1.5, 2, 2.5]);
  });

  it('qfac from pixdim[0]', () => {
    for (const [pixdim0, sign] of [
      [-1, -1],
      [1, 1],
      [0, 1],
    ]) {
      const header = makeHeader({
        qformCode: 1,
        pixdim: [pixdim0, 1.5, 2, 2.5, 1, 1, 1, 1],
      });
      const read = readNifti(makeFile(header, data));
      expect(column(read.affine, 2), `pixdim[0] ${pixdim0}`).toEqual([0, 0, sign * 2.5]);
    }
  });

  it('quaternion just outside the unit sphere renormalised', () => {
    // b^2 = 1 + 5e-7: rounding, within QUATERNION_TOLERANCE.
    const b = Math.fround(Math.sqrt(1 + 5e-7));
    const header = makeHeader({ qformCode: 1, quaternion: [b, 0, 0] });
    const read = readNifti(makeFile(header, data));
    expect(read.affine.every(Number.isFinite)).toBe(true);
    // 180 degrees about x: j and k flip.
    expectClose(column(read.affine, 0), [1.5, 0, 0], 0, 1e-6, 'i column');
    expectClose(column(read.affine, 1), [0, -2, 0], 0, 1e-6, 'j column');
    expectClose(column(read.affine, 2), [0, 0, -2.5], 0, 1e-6, 'k column');
    expect(read.warnings).toBeUndefined();
  });

  it('quaternion far outside the unit sphere rejected', () => {
    const header = makeHeader({ qformCode: 1, quaternion: [0.8, 0.8, 0] });
    const read = readNifti(makeFile(header, data));
    expect(Array.from(read.affine)).toEqual([1.5, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2.5, 0, 0, 0, 0, 1]);
    expect(read.warnings).toEqual([
      'qform_code is 1 but the quaternion has b^2+c^2+d^2 = 1.280000 > 1; ignoring the qform',
    ]);
  });

  it('quaternion ignored when qform_code is 0', () => {
    const header = makeHeader({ quaternion: [NaN, 5, 5], qoffset: [NaN, 1, 1] });
    const read = readNifti(makeFile(header, data));
    expect(Array.from(read.affine)).toEqual([1.5, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2.5, 0, 0, 0, 0, 1]);
    expect(read.warnings).toEqual([NO_ORIENTATION]);
  });

  it('sform wins when qform disagrees', () => {
    setLogLevel('warn');
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const header = makeHeader({
      sformCode: 1,
      qformCode: 1,
      qoffset: [0, 0, 1],
    });
    const read = readNifti(makeFile(header, data), { name: 'scan.nii' });
    expect(read.affine[14]).toBe(0);
    expect(read.warnings).toEqual([
      'sform and qform disagree (grid corners up to 1.00 mm apart); using the sform',
    ]);
    expect(warn).toHaveBeenCalledWith(
      'rrl-medsam warn: scan.nii: sform and qform disagree (grid corners up to 1.00 mm apart); using the sform',
    );
  });

  it('sform and qform within tolerance agree', () => {
    const header = makeHeader({ sformCode: 1, qformCode: 1, qoffset: [0, 0, 0.004] });
    const read = readNifti(makeFile(header, data));
    expect(read.warnings).toBeUndefined();
  });

  it('scl_slope 0, NaN or infinity means no scaling', () => {
    for (const sclSlope of [0, NaN, Infinity, -Infinity]) {
      const header = makeHeader({ sclSlope, sclInter: 100 });
      const read = readNifti(makeFile(header, data));
      expect(read.data[7], `slope ${sclSlope}`).toBe(7);
    }
  });

  it('scl_slope and scl_inter applied', () => {
    const header = makeHeader({
      dim: [3, 2, 1, 1, 1, 1, 1, 1],
      datatypeCode: 4,
      bitpix: 16,
      sclSlope: 0.5,
      sclInter: -3,
    });
    const read = readNifti(makeFile(header, new Uint8Array(Int16Array.of(-4, 9).buffer)));
    expect(Array.from(read.data)).toEqual([-5, 1.5]);
    expect(read.datatype).toBe('int16');
  });

  it('extension flag without room loads', () => {
    const file = makeFile(makeHeader(), data);
    file[348] = 1;
    const read = readNifti(file);
    expect(Array.from(read.data)).toEqual(Array.from(new Float32Array(data.buffer)));
  });

  it('real extension skipped', () => {
    const file = makeFile(makeHeader({ voxOffset: 352 + 32 }), data);
    file[348] = 1;
    // One extension: esize 32, ecode 6 (comment), then text.
    const view = new DataView(file.buffer);
    view.setInt32(352, 32, true);
    view.setInt32(356, 6, true);
    file.set(new TextEncoder().encode('a comment'), 360);
    const read = readNifti(file);
    expect(read.data[104]).toBe(104);
  });

  it('4D with 4th size 1 loads as 3D', () => {
    const header = makeHeader({ dim: [4, 3, 5, 7, 1, 1, 1, 1] });
    expect(readNifti(makeFile(header, data)).dims).toEqual([3, 5, 7]);
    const five = makeHeader({ dim: [5, 3, 5, 7, 1, 1, 1, 1] });
    expect(readNifti(makeFile(five, data)).dims).toEqual([3, 5, 7]);
  });

  it('sizes beyond dim[0] ignored', () => {
    const header = makeHeader({ dim: [2, 15, 7, 0, -3, 9, 9, 9] });
    const read = readNifti(makeFile(header, data));
    expect(read.dims).toEqual([15, 7, 1]);
  });

  it('vector image keeps 5 dims', () => {
    const header = makeHeader({ dim: [5, 7, 5, 1, 1, 3, 1, 1] });
    expect(readNifti(makeFile(header, data)).dims).toEqual([7, 5, 1, 1, 3]);
  });

  it('bad pixdim falls back with warnings', () => {
    const header = makeHeader({ pixdim: [1, 0, -2, NaN, 1, 1, 1, 1] });
    const read = readNifti(makeFile(header, data));
    expect(read.spacing).toEqual([1, 2, 1]);
    expect(read.warnings).toEqual([
      NO_ORIENTATION,
      'pixdim[1] is 0; using 1 mm',
      'pixdim[2] is -2; using its absolute value',
      'pixdim[3] is NaN; using 1 mm',
    ]);
  });

  it('bad pixdim ignored when the sform is used', () => {
    const header = makeHeader({ sformCode: 1, pixdim: [1, 0, -2, NaN, 1, 1, 1, 1] });
    const read = readNifti(makeFile(header, data));
    expect(read.spacing).toEqual([1.5, 2, 2.5]);
    expect(read.warnings).toBeUndefined();
  });

  it('NIfTI-2 header read', () => {
    const header = makeHeader({ version: 2, voxOffset: 544, sformCode: 1 });
    const read = readNifti(makeFile(header, data));
    expect(read.dims).toEqual([3, 5, 7]);
    expect(read.spacing).toEqual([1.5, 2, 2.5]);
    expect(read.data[104]).toBe(104);
  });

  it('bitpix disagreeing with datatype warns', () => {
    const read = readNifti(makeFile(makeHeader({ bitpix: 8 }), data));
    expect(read.data[104]).toBe(104);
    expect(read.warnings).toEqual([
      'bitpix is 8 but datatype float32 has 32 bits per voxel; using the datatype',
      NO_ORIENTATION,
    ]);
  });
});

describe('read errors', () => {
  const data = float32Bytes(new Array(105).fill(1));

  function reasonOf(bytes: Uint8Array, name = 'scan.nii'): string {
    const error = niftiErrorOf(() => readNifti(bytes, { name }));
    expect(error.source).toBe(name);
    expect(error.message).toBe(`${name}: ${error.reason}`);
    return error.reason;
  }

  it('truncated file names sizes', () => {
    const header = makeHeader({ dim: [3, 120, 120, 90, 1, 1, 1, 1], datatypeCode: 2, bitpix: 8 });
    const file = makeFile(header, new Uint8Array(0)).subarray(0, 1000);
    const padded = new Uint8Array(1000);
    padded.set(file);
    const error = niftiErrorOf(() => readNifti(padded, { name: 'brain.nii.gz' }));
    expect(error.message).toBe(
      'brain.nii.gz: truncated: header says 120x120x90 uint8 (1296000 bytes) at offset 352 ' +
        'but the file has 1000 bytes',
    );
  });

  it('truncated gzip stream', () => {
    const file = gzip(makeFile(makeHeader(), data));
    const cut = file.subarray(0, file.length - 60);
    expect(reasonOf(cut)).toMatch(
      /^cut-short header: the gzip stream ends early after \d+ decompressed bytes, but a NIfTI-1 header needs 348$/,
    );
    // A larger file cut inside its image data.
    const large = makeHeader({ dim: [3, 30, 50, 70, 1, 1, 1, 1] });
    const values = Array.from({ length: 105000 }, (_, i) => Math.sin(i));
    const big = gzip(makeFile(large, float32Bytes(values)));
    expect(reasonOf(big.subarray(0, big.length >> 1))).toMatch(
      /^truncated: header says 30x50x70 float32 \(420000 bytes\) at offset 352 but the gzip stream ends early after \d+ decompressed bytes$/,
    );
  });

  it('bytes past the image data are reported', () => {
    // A 3x5x14 volume whose header was edited to say 3x5x7.
    const doubled = float32Bytes(Array.from({ length: 210 }, (_, i) => i));
    const file = makeFile(makeHeader(), doubled);
    const expected =
      '420 bytes follow the image data (header says 3x5x7 float32 (420 bytes) at offset 352) ' +
      "and were not read; if the scan looks wrong, its header's dims or datatype describe " +
      'less than the file contains';
    for (const bytes of [file, gzip(file)]) {
      const read = readNifti(bytes, { name: 'scan.nii' });
      expect(read.warnings).toContain(expected);
      expect(plain(read.data)).toEqual(Array.from({ length: 105 }, (_, i) => i));
    }
    // A file that ends with its image data draws no such warning.
    const exact = readNifti(makeFile(makeHeader(), doubled.subarray(0, 420)), { name: 'scan.nii' });
    expect(exact.warnings ?? []).not.toContainEqual(expect.stringContaining('follow the image data'));
  });

  it('gzip trailer cut off', () => {
    const file = gzip(makeFile(makeHeader(), data));
    expect(reasonOf(file.subarray(0, file.length - 8))).toBe(
      'gzip CRC-32 or length check failed: the stream is corrupt or truncated',
    );
  });

  it('gzip CRC mismatch', () => {
    const file = gzip(makeFile(makeHeader(), data));
    file[file.length - 6] ^= 0x40;
    expect(reasonOf(file)).toBe(
      'gzip CRC-32 or length check failed: the stream is corrupt or truncated',
    );
  });

  it('gzip stream ending inside the header', () => {
    const file = gzip(makeFile(makeHeader(), data));
    expect(reasonOf(file.subarray(0, 20))).toMatch(
      /^cut-short header: the gzip stream ends early after \d+ decompressed bytes, but/,
    );
  });

  it('invalid gzip data', () => {
    const file = gzip(makeFile(makeHeader(), data));
    file[12] ^= 0xff;
    expect(reasonOf(file)).toBe(
      'invalid gzip stream (invalid distance) after 0 decompressed bytes, inside the NIfTI header',
    );
  });

  it('cut-short header', () => {
    const file = makeFile(makeHeader(), data).subarray(0, 200);
    expect(reasonOf(file)).toBe(
      'cut-short header: the file has 200 bytes, but a NIfTI-1 header needs 348',
    );
    const two = makeFile(makeHeader({ version: 2, voxOffset: 544 }), data).subarray(0, 500);
    expect(reasonOf(two)).toBe(
      'cut-short header: the file has 500 bytes, but a NIfTI-2 header needs 540',
    );
    expect(reasonOf(new Uint8Array(2))).toBe(
      'cut-short header: the file has 2 bytes, but a NIfTI-1 header needs 348',
    );
  });

  it('not a NIfTI file', () => {
    const text = new TextEncoder().encode('hello world, this is not an image'.repeat(20));
    expect(reasonOf(text)).toMatch(/^not a NIfTI file: sizeof_hdr is \d+ \(expected 348/);
    const analyze = makeFile(makeHeader(), data);
    analyze.fill(0, 344, 348);
    expect(reasonOf(analyze)).toBe(
      'not a NIfTI-1 file: magic is "\\u0000\\u0000\\u0000\\u0000", expected "n+1" ' +
        '(a header without it is Analyze 7.5, which is not supported)',
    );
    const pair = makeFile(makeHeader(), data);
    pair[345] = 0x69;
    expect(reasonOf(pair)).toBe(
      'header of a .hdr/.img pair (magic "ni1"); only single-file .nii and .nii.gz are supported',
    );
  });

  it('NIfTI-2 signature damaged', () => {
    const file = makeFile(makeHeader({ version: 2, voxOffset: 544 }), data);
    file[8] = 0x0a; // \r\n became \n\n
    expect(reasonOf(file)).toContain('not a NIfTI-2 file: magic bytes are [110, 43, 50, 0, 10, 10');
  });

  it('bad dims', () => {
    const cases: [number[], string][] = [
      [[3, 3, 0, 7, 1, 1, 1, 1], 'dim[2] is 0; each of the 3 sizes in dim [3, 0, 7] must be a positive integer'],
      [[3, 3, 5, -7, 1, 1, 1, 1], 'dim[3] is -7; each of the 3 sizes in dim [3, 5, -7] must be a positive integer'],
      [[0, 3, 5, 7, 1, 1, 1, 1], 'dim[0] is 0; expected the number of dimensions, 1 to 7'],
      [[9, 3, 5, 7, 1, 1, 1, 1], 'dim[0] is 9; expected the number of dimensions, 1 to 7'],
      [
        [7, 3, 5, 7, 1, 1, 2, 1],
        'dims [3, 5, 7, 1, 1, 2, 1] have 7 dimensions; only up to 5 (x, y, z, time, vector component) are supported',
      ],
      [
        [5, 32767, 32767, 32767, 32767, 32767, 1, 1],
        `dims [32767, 32767, 32767, 32767, 32767] hold ${32767 * 32767 * 32767 * 32767 * 32767} ` +
          'voxels; the reader accepts at most 536870912',
      ],
    ];
    for (const [dim, reason] of cases) {
      expect(reasonOf(makeFile(makeHeader({ dim }), data)), dim.join(',')).toBe(reason);
    }
  });

  it('dims larger than the file', () => {
    const header = makeHeader({ dim: [3, 300, 300, 300, 1, 1, 1, 1] });
    expect(reasonOf(makeFile(header, data))).toBe(
      'truncated: header says 300x300x300 float32 (108000000 bytes) at offset 352 but the file has 772 bytes',
    );
    const gzipped = gzip(makeFile(header, data));
    expect(reasonOf(gzipped)).toMatch(
      /^truncated: header says 300x300x300 float32 \(108000000 bytes\) at offset 352 but a gzip stream of \d+ bytes decompresses to at most \d+ \(deflate expands at most 1032:1\)$/,
    );
  });

  it('NIfTI-2 sizes past 2^53', () => {
    const file = makeFile(makeHeader({ version: 2, voxOffset: 544 }), data);
    new DataView(file.buffer).setBigInt64(24, 2n ** 62n, true);
    expect(reasonOf(file)).toBe(
      'dim[1] is Infinity; each of the 3 sizes in dim [Infinity, 5, 7] must be a positive integer',
    );
  });

  it('wrong vox_offset', () => {
    const cases: [number, string][] = [
      [0, 'vox_offset is 0; expected an integer of at least 348, the size of a NIfTI-1 header'],
      [100, 'vox_offset is 100; expected an integer of at least 348, the size of a NIfTI-1 header'],
      [352.5, 'vox_offset is 352.5; expected an integer of at least 348, the size of a NIfTI-1 header'],
      [-352, 'vox_offset is -352; expected an integer of at least 348, the size of a NIfTI-1 header'],
    ];
    for (const [voxOffset, reason] of cases) {
      const file = makeFile(makeHeader(), data);
      new DataView(file.buffer).setFloat32(108, voxOffset, true);
      expect(reasonOf(file), String(voxOffset)).toBe(reason);
    }
    const beyond = makeFile(makeHeader(), data);
    new DataView(beyond.buffer).setFloat32(108, 4096, true);
    expect(reasonOf(beyond)).toBe(
      'truncated: header says 3x5x7 float32 (420 bytes) at offset 4096 but the file has 772 bytes',
    );
  });

  it('unsupported datatypes', () => {
    expect(reasonOf(makeFile(makeHeader({ datatypeCode: 32, bitpix: 64 }), data))).toBe(
      'datatype complex64 (code 32) is not supported; supported: uint8, int16, int32, float32, float64, int8, uint16, uint32',
    );
    expect(reasonOf(makeFile(makeHeader({ datatypeCode: 1024, bitpix: 64 }), data))).toContain(
      'datatype int64 (code 1024) is not supported',
    );
    expect(reasonOf(makeFile(makeHeader({ datatypeCode: 3 }), data))).toContain(
      'unknown datatype code 3;',
    );
  });

  it('default name is readNifti', () => {
    const error = niftiErrorOf(() => readNifti(new Uint8Array(10)));
    expect(error.message).toMatch(/^readNifti: /);
  });
});

describe('displacement field', () => {
  const [nx, ny, nz] = [3, 4, 5];
  const count = nx * ny * nz;
  const grid = { dims: [nx, ny, nz], affine: obliqueAffine() };

  function sampleFlow(): Float32Array {
    return Float32Array.from({ length: 3 * count }, (_, i) => Math.fround(Math.sin(i) * 2));
  }

  it('vectors are the affine times voxel displacement', () => {
    const flow = new Float32Array(3 * count);
    const voxel = 1 + nx * (2 + ny * 3); // (i, j, k) = (1, 2, 3)
    flow[voxel] = 1; // channel 0: one voxel along k
    flow[count + voxel] = 0.5; // channel 1: half a voxel along j
    flow[2 * count + voxel] = 2; // channel 2: two voxels along i
    const field = flowToDisplacementField({ data: flow, shape: [1, 3, nz, ny, nx] }, grid);
    expect(field.dims).toEqual([nx, ny, nz, 1, 3]);
    expect(field.intentCode).toBe(1006);
    const affine = obliqueAffine();
    const expected = [0, 1, 2].map(
      (row) => affine[row] * 2 + affine[4 + row] * 0.5 + affine[8 + row] * 1,
    );
    const got = [0, 1, 2].map((component) => field.data[component * count + voxel]);
    expectClose(got, expected, 1e-6, 1e-6, 'world vector');
    expect(field.data[0]).toBe(0);
  });

  it('vectors across two grids', () => {
    // A flow on `grid` that samples a second grid, shifted and finer.
    const sampled = Float64Array.from(obliqueAffine());
    for (let entry = 0; entry < 12; entry++) sampled[entry] *= 0.9;
    sampled[12] += 14;
    sampled[13] -= 3;
    const flow = sampleFlow();
    const field = flowToDisplacementField({ data: flow, shape: [1, 3, nz, ny, nx] }, grid, { affine: sampled });
    const world = (affine: ArrayLike<number>, p: number[], row: number) =>
      affine[row] * p[0] + affine[4 + row] * p[1] + affine[8 + row] * p[2] + affine[12 + row];
    const fixedAffine = obliqueAffine();
    for (const voxel of [0, 7, count - 1]) {
      const p = [voxel % nx, Math.floor(voxel / nx) % ny, Math.floor(voxel / (nx * ny))];
      const q = [p[0] + flow[2 * count + voxel], p[1] + flow[count + voxel], p[2] + flow[voxel]];
      const expected = [0, 1, 2].map((row) => world(sampled, q, row) - world(fixedAffine, p, row));
      const got = [0, 1, 2].map((component) => field.data[component * count + voxel]);
      expectClose(got, expected, 1e-6, 1e-5, `voxel ${voxel}`);
    }
  });

  it('write and read reproduce the flow', () => {
    const flow = sampleFlow();
    const field = flowToDisplacementField({ data: flow, shape: [1, 3, nz, ny, nx] }, grid);
    const bytes = writeNifti(field, { gzip: false });
    const view = new DataView(bytes.buffer);
    expect(Array.from({ length: 8 }, (_, i) => view.getInt16(40 + 2 * i, true))).toEqual([
      5, nx, ny, nz, 1, 3, 1, 1,
    ]);
    expect(view.getInt16(68, true)).toBe(1006);
    const read = readNifti(bytes);
    expect(read.dims).toEqual([nx, ny, nz, 1, 3]);
    const back = displacementFieldToFlow(read);
    expect(back.shape).toEqual([1, 3, nz, ny, nx]);
    expectClose(back.data, flow, 1e-6, 1e-6, 'flow after write and read');
  });

  it('shape mismatch rejected', () => {
    const transposed = { data: new Float32Array(3 * count), shape: [1, 3, nx, ny, nz] };
    const error = niftiErrorOf(() => flowToDisplacementField(transposed, grid));
    expect(error.message).toBe(
      'flowToDisplacementField: flow [1, 3, 3, 4, 5] with 180 values does not match grid dims ' +
        '[3, 4, 5]; expected [1, 3, 5, 4, 3]',
    );
  });

  it('scalar volume is not a field', () => {
    const volume = createVolume(new Float32Array(count), [nx, ny, nz]);
    const error = niftiErrorOf(() => displacementFieldToFlow(volume));
    expect(error.message).toBe(
      'displacementFieldToFlow: volume with dims [3, 4, 5] and intent 0 is not a displacement ' +
        'field; expected dims [nx, ny, nz, 1, 3] and intent 1006 (NIFTI_INTENT_DISPVECT)',
    );
  });
});

describe('file helpers', () => {
  it('write and read files', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'rrl-nifti-'));
    try {
      const volume = createVolume(
        Float32Array.from({ length: 105 }, (_, i) => i % 4),
        [3, 5, 7],
        obliqueAffine(),
      );
      for (const name of ['labels.nii.gz', 'labels.nii']) {
        const path = join(directory, name);
        await writeNiftiFile(path, volume, { labels: true });
        const bytes = readFileSync(path);
        const expectedStart = name.endsWith('.gz') ? [0x1f, 0x8b] : [0x5c, 0x01];
        expect([bytes[0], bytes[1]], name).toEqual(expectedStart);
        const read = await readNiftiFile(path);
        expect(read.datatype).toBe('uint8');
        expect(Array.from(read.data)).toEqual(Array.from(volume.data));
        // Overwriting an existing file also works.
        await writeNiftiFile(path, volume);
        expect((await readNiftiFile(path)).datatype).toBe('float32');
      }
      // No temporary files are left behind.
      expect((await readdir(directory)).sort()).toEqual(['labels.nii', 'labels.nii.gz']);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('file errors name the path', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'rrl-nifti-'));
    try {
      const missing = join(directory, 'missing.nii.gz');
      await expect(readNiftiFile(missing)).rejects.toThrow(`${missing}: file not found`);
      const broken = join(directory, 'broken.nii');
      await writeFile(broken, new Uint8Array(400));
      await expect(readNiftiFile(broken)).rejects.toBeInstanceOf(NiftiError);
      const volume = createVolume(new Float32Array(6), [1, 2, 3]);
      await expect(writeNiftiFile(join(directory, 'out.img'), volume)).rejects.toThrow(
        'file name must end in .nii or .nii.gz',
      );
      // A missing parent directory is created, but a file in its place is an error.
      const nested = join(directory, 'new-dir', 'out.nii');
      await writeNiftiFile(nested, volume);
      expect((await readNiftiFile(nested)).dims).toEqual([1, 2, 3]);
      await expect(writeNiftiFile(join(broken, 'out.nii'), volume)).rejects.toThrow(
        `${join(broken, 'out.nii')}: write failed`,
      );
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});
