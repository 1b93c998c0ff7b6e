// Rendering of one slice of a volume as an RGBA image, with an optional
// label overlay. Volumes are reoriented to RAS first, so every scan shows
// the same way. Anterior is up in axial views and superior is up in
// coronal and sagittal views. Sagittal views put anterior on the left.
// Axial and coronal views put the patient's left on the image's left
// (neurological convention) unless `radiological` is set.

import { sameGrid } from './manifest-validate.js';
import { createVolume, type Volume } from './volume.js';
import { isRas, reorientToRas } from './reorient.js';
import { resampleVolume } from './resample.js';

/** An 8-bit RGBA image, rows top to bottom. */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export type Plane = 'axial' | 'coronal' | 'sagittal';

/**
 * A volume, or bare data laid out x fastest. Bare data are taken as RAS
 * with `spacing` (1 mm unless given).
 */
export type VolumeLike =
  | Volume
  | { data: ArrayLike<number>; dims: number[]; spacing?: number[] };

export interface SliceOptions {
  /** Label map drawn over the image; label 0 stays transparent. */
  labels?: VolumeLike;
  plane: Plane;
  /**
   * Slice index along the plane's normal in the RAS-reoriented grid (k
   * for axial, j for coronal, i for sagittal); the middle by default.
   */
  index?: number;
  /** Intensities mapped to black and white; see `windowPercentiles`. */
  window?: [number, number];
  /** Percentiles of the volume used as the window (default 0.5, 99.5). */
  windowPercentiles?: [number, number];
  /** Opacity of the label colours (default 0.4). */
  alpha?: number;
  /** Show the patient's right on the image's left (default false). */
  radiological?: boolean;
  /**
   * Output pixels per voxel along the finer in-plane axis. By default the
   * larger side gets at least 192 pixels.
   */
  zoom?: number;
  /** Size of an output pixel in mm; overrides `zoom`. */
  pixelMm?: number;
}

/** A volume and its labels reoriented to RAS, with the display window. */
export interface PreparedVolume {
  image: Volume;
  labels?: Volume;
  window: [number, number];
}

// Percentiles are taken over at most this many voxels, sampled at a fixed
// stride, which keeps windowing fast on large volumes.
const WINDOW_SAMPLES = 1 << 18;

/** Returns the display colour of a label id (0 to 255 per channel). */
export function labelColor(id: number): [number, number, number] {
  // Hues 137.5 degrees apart (the golden angle) keep neighbouring ids
  // distinct; saturation and value alternate so that ids 3 apart differ.
  const hue = (id * 0.6180339887498949) % 1;
  const saturation = [0.9, 0.65, 0.8][id % 3];
  const value = [1, 0.85][Math.floor(id / 3) % 2];
  return hsvToRgb(hue, saturation, value);
}

function hsvToRgb(h: number, s: number, v: number): [number, number, number] {
  const sector = Math.floor(h * 6);
  const f = h * 6 - sector;
  const p = v * (1 - s);
  const q = v * (1 - f * s);
  const t = v * (1 - (1 - f) * s);
  const rgb = [
    [v, t, p],
    [q, v, p],
    [p, v, t],
    [p, q, v],
    [t, p, v],
    [v, p, q],
  ][sector % 6];
  return rgb.map((channel) => Math.round(channel * 255)) as [
    number,
    number,
    number,
  ];
}

/**
 * Reorients a volume (and labels) to RAS and computes the display window.
 * Labels on another grid are resampled onto the image's grid (nearest).
 */
export function prepareVolume(
  volume: VolumeLike,
  options: Omit<SliceOptions, 'plane' | 'index'> = {},
): PreparedVolume {
  const image = asVolume(volume, undefined, 'image');
  let labels = options.labels
    ? asVolume(options.labels, image, 'labels')
    : undefined;
  if (labels && !sameGrid(labels, image)) {
    labels = resampleVolume(labels, image, { mode: 'nearest' });
  }
  const window =
    options.window ??
    displayWindow(image.data, options.windowPercentiles ?? [0.5, 99.5]);
  return {
    image: isRas(image.affine) ? image : reorientToRas(image),
    labels: labels && !isRas(labels.affine) ? reorientToRas(labels) : labels,
    window,
  };
}

function asVolume(
  input: VolumeLike,
  reference: Volume | undefined,
  role: string,
): Volume {
  if (input.dims.length !== 3) {
    throw new Error(
      `renderSlices: ${role} dims [${input.dims.join(', ')}] must be 3D ` +
        `[nx, ny, nz]`,
    );
  }
  if ('affine' in input && input.affine) return input as Volume;
  const data = Float32Array.from(input.data);
  if (reference) {
    if (reference.dims.join() !== input.dims.join()) {
      throw new Error(
        `renderSlices: ${role} dims [${input.dims.join(', ')}] differ from ` +
          `the image's [${reference.dims.join(', ')}]; give both an affine ` +
          `to resample, or the same dims`,
      );
    }
    return createVolume(data, input.dims, reference.affine);
  }
  const spacing = input.spacing ?? [1, 1, 1];
  const affine = new Float64Array(16);
  affine[0] = spacing[0];
  affine[5] = spacing[1];
  affine[10] = spacing[2];
  affine[15] = 1;
  return createVolume(data, input.dims, affine);
}

/** Returns the intensities at two percentiles of a strided sample. */
function displayWindow(
  data: ArrayLike<number>,
  [lowerPercentile, upperPercentile]: [number, number],
): [number, number] {
  const stride = Math.max(1, Math.ceil(data.length / WINDOW_SAMPLES));
  const sample: number[] = [];
  for (let i = 0; i < data.length; i += stride) {
    if (Number.isFinite(data[i])) sample.push(data[i]);
  }
  if (sample.length === 0) return [0, 1];
  const sorted = Float64Array.from(sample).sort();
  const at = (p: number) =>
    sorted[Math.round((p / 100) * (sorted.length - 1))];
  const lower = at(lowerPercentile);
  const upper = at(upperPercentile);
  return upper > lower ? [lower, upper] : [lower, lower + 1];
}

/**
 * Returns the output pixel size in mm of a plane at `zoom` pixels per
 * voxel of its finer in-plane axis. The default zoom gives the larger
 * side at least 192 pixels.
 */
export function naturalPixelMm(
  image: Volume,
  plane: Plane,
  zoom?: number,
): number {
  const [columnAxis, rowAxis] = PLANE_AXES[plane];
  const longest = Math.max(image.dims[columnAxis], image.dims[rowAxis]);
  const pixelsPerVoxel = zoom ?? Math.max(1, Math.ceil(192 / longest));
  return (
    Math.min(image.spacing[columnAxis], image.spacing[rowAxis]) /
    pixelsPerVoxel
  );
}

/** Renders one slice of a volume, optionally with a label overlay. */
export function renderSlices(
  volume: VolumeLike | PreparedVolume,
  options: SliceOptions,
): RgbaImage {
  const prepared =
    'window' in volume && 'image' in volume
      ? (volume as PreparedVolume)
      : prepareVolume(volume as VolumeLike, options);
  return renderPlane(prepared, options);
}

// For each plane: the voxel axis of image columns, of rows, and the
// normal. Rows run from the top of the image (anterior or superior).
const PLANE_AXES: Record<Plane, [number, number, number]> = {
  axial: [0, 1, 2],
  coronal: [0, 2, 1],
  sagittal: [1, 2, 0],
};

function renderPlane(prepared: PreparedVolume, options: SliceOptions): RgbaImage {
  const { image, labels, window } = prepared;
  const plane = options.plane;
  if (!(plane in PLANE_AXES)) {
    throw new Error(
      `renderSlices: plane "${String(plane)}" is not 'axial', 'coronal' ` +
        `or 'sagittal'`,
    );
  }
  const [columnAxis, rowAxis, normalAxis] = PLANE_AXES[plane];
  const dims = image.dims;
  const index = options.index ?? Math.floor(dims[normalAxis] / 2);
  if (!Number.isInteger(index) || index < 0 || index >= dims[normalAxis]) {
    throw new Error(
      `renderSlices: ${plane} index ${index} is outside 0..` +
        `${dims[normalAxis] - 1}`,
    );
  }

  // Square pixels in mm, so anisotropic voxels keep their aspect ratio.
  const columnMm = image.spacing[columnAxis];
  const rowMm = image.spacing[rowAxis];
  const columns = dims[columnAxis];
  const rows = dims[rowAxis];
  const widthMm = columns * columnMm;
  const heightMm = rows * rowMm;
  const pixelMm = options.pixelMm ?? naturalPixelMm(image, plane, options.zoom);
  if (!(pixelMm > 0)) {
    throw new Error(`renderSlices: pixelMm ${pixelMm} must be positive`);
  }
  const width = Math.max(1, Math.round(widthMm / pixelMm));
  const height = Math.max(1, Math.round(heightMm / pixelMm));

  // Sagittal columns run along j (posterior to anterior); anterior is
  // drawn on the left, so they are reversed. Axial and coronal columns run
  // along i (left to right), reversed in the radiological convention.
  const reverseColumns =
    plane === 'sagittal' ? true : options.radiological === true;
  const strides = [1, dims[0], dims[0] * dims[1]];
  const base = index * strides[normalAxis];
  const columnVoxel = new Int32Array(width);
  for (let x = 0; x < width; x++) {
    let voxel = Math.min(columns - 1, Math.floor(((x + 0.5) * pixelMm) / columnMm));
    if (reverseColumns) voxel = columns - 1 - voxel;
    columnVoxel[x] = voxel * strides[columnAxis];
  }

  const alpha = options.alpha ?? 0.4;
  const [lower, upper] = window;
  const scale = 255 / (upper - lower);
  const out = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    const fromTop = Math.min(rows - 1, Math.floor(((y + 0.5) * pixelMm) / rowMm));
    const rowOffset = base + (rows - 1 - fromTop) * strides[rowAxis];
    for (let x = 0; x < width; x++) {
      const voxel = rowOffset + columnVoxel[x];
      const grey = Math.min(255, Math.max(0, (image.data[voxel] - lower) * scale));
      let red = grey;
      let green = grey;
      let blue = grey;
      const label = labels ? labels.data[voxel] : 0;
      if (label !== 0) {
        const colour = labelColor(label);
        red = (1 - alpha) * grey + alpha * colour[0];
        green = (1 - alpha) * grey + alpha * colour[1];
        blue = (1 - alpha) * grey + alpha * colour[2];
      }
      const pixel = (y * width + x) * 4;
      out[pixel] = Math.round(red);
      out[pixel + 1] = Math.round(green);
      out[pixel + 2] = Math.round(blue);
      out[pixel + 3] = 255;
    }
  }
  return { width, height, data: out };
}
