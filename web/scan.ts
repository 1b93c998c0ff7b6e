// Reading a scan the user dropped or picked: NIfTI bytes to a Volume, with
// the checks that give a specific message for the usual wrong inputs (a
// picture, a text file, a 2D slice, a 4D series).

import { readNifti } from '../src/pipeline/nifti.js';
import type { Volume } from '../src/pipeline/volume.js';
import { PageError } from './messages.js';

/** A scan in the page: its file name, file bytes and decoded volume. */
export interface LoadedScan {
  name: string;
  bytes: Uint8Array;
  volume: Volume;
}

// Magic numbers of file types that users drop by mistake.
const KNOWN_FORMATS: { name: string; magic: number[]; picture: boolean }[] = [
  { name: 'PNG image', magic: [0x89, 0x50, 0x4e, 0x47], picture: true },
  { name: 'JPEG image', magic: [0xff, 0xd8, 0xff], picture: true },
  { name: 'GIF image', magic: [0x47, 0x49, 0x46, 0x38], picture: true },
  { name: 'TIFF image', magic: [0x49, 0x49, 0x2a, 0x00], picture: true },
  { name: 'TIFF image', magic: [0x4d, 0x4d, 0x00, 0x2a], picture: true },
  { name: 'WebP or RIFF file', magic: [0x52, 0x49, 0x46, 0x46], picture: true },
  { name: 'PDF document', magic: [0x25, 0x50, 0x44, 0x46], picture: false },
  { name: 'ZIP archive', magic: [0x50, 0x4b, 0x03, 0x04], picture: false },
];

/** Names the file type of `bytes` when it is a common non-NIfTI one. */
function knownFormat(bytes: Uint8Array): (typeof KNOWN_FORMATS)[number] | null {
  return (
    KNOWN_FORMATS.find((format) =>
      format.magic.every((value, i) => bytes[i] === value),
    ) ?? null
  );
}

// DICOM files carry "DICM" after a 128-byte preamble.
function isDicom(bytes: Uint8Array): boolean {
  const tag = [0x44, 0x49, 0x43, 0x4d];
  const tagged = tag.every((value, i) => bytes[128 + i] === value);
  return bytes.length > 132 && tagged;
}

function rejectKnownFormats(name: string, bytes: Uint8Array): void {
  const format = knownFormat(bytes);
  if (format?.picture) {
    throw new PageError(
      '2d-image',
      `${name}: a 2D picture, not a 3D scan`,
      `The file is a ${format.name}. The model segments 3D volumes: drop ` +
        'the scan as a NIfTI file (.nii or .nii.gz), for example converted ' +
        'from DICOM with dcm2niix.',
    );
  }
  if (format || isDicom(bytes)) {
    throw new PageError(
      'not-nifti',
      `${name}: not a NIfTI volume the page can read`,
      `The file is a ${format?.name ?? 'DICOM file'}, not NIfTI. Drop a 3D ` +
        'scan saved as .nii or .nii.gz (dcm2niix converts DICOM series).',
    );
  }
}

/** Throws a PageError unless `volume` is one 3D scan. */
export function checkScanVolume(name: string, volume: Volume): void {
  const dims = volume.dims;
  const spatial = dims.slice(0, 3);
  const flat = spatial.filter((size) => size < 2).length;
  if (flat > 0) {
    throw new PageError(
      '2d-image',
      `${name}: a 2D image, not a 3D scan`,
      `The volume is ${dims.join(' x ')} voxels: ${flat} of its three ` +
        'spatial axes have a single voxel. The model segments 3D volumes; ' +
        'drop the whole scan rather than one slice.',
    );
  }
  if (dims.length > 3) {
    throw new PageError(
      'not-3d',
      `${name}: a ${dims.length}D series, not one 3D scan`,
      `The volume is ${dims.join(' x ')} voxels. Extract one 3D volume ` +
        '(for example the first time point with fslroi) and drop that.',
    );
  }
  checkIntensities(name, volume);
}

/** Throws a PageError when a voxel is NaN or infinite, or all are equal. */
function checkIntensities(name: string, volume: Volume): void {
  const { data, dims } = volume;
  let nonFinite = 0;
  let first = -1;
  for (let i = 0; i < data.length; i++) {
    if (Number.isFinite(data[i])) continue;
    nonFinite += 1;
    if (first < 0) first = i;
  }
  if (nonFinite > 0) {
    const [nx, ny] = dims;
    const voxel = [first % nx, Math.floor(first / nx) % ny, Math.floor(first / (nx * ny))];
    throw new PageError(
      'bad-intensities',
      `${name}: ${nonFinite} voxels are not finite numbers`,
      `The first, at voxel (${voxel.join(', ')}), holds ${data[first]}. The ` +
        'model needs a finite intensity in every voxel: replace NaN and ' +
        'infinite values (for example with fslmaths -nan) and drop the scan again.',
    );
  }
  let constant = true;
  for (let i = 1; i < data.length && constant; i++) constant = data[i] === data[0];
  if (constant) {
    throw new PageError(
      'bad-intensities',
      `${name}: every voxel holds ${data[0]}`,
      'A constant volume has no anatomy to align or segment. Drop the scan itself.',
    );
  }
}

/**
 * Decodes a scan from file bytes. Throws a PageError for pictures and
 * other known non-NIfTI files and for 2D or 4D volumes, and the reader's
 * NiftiError for any other invalid file.
 */
export function readScan(name: string, bytes: Uint8Array): LoadedScan {
  if (bytes.length === 0) {
    throw new PageError(
      'not-nifti',
      `${name}: the file is empty`,
      'Drop a 3D scan saved as .nii or .nii.gz.',
    );
  }
  rejectKnownFormats(name, bytes);
  const volume = readNifti(bytes, { name });
  checkScanVolume(name, volume);
  return { name, bytes, volume };
}
