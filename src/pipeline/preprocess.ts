// Preprocessing of a scan for the model: reorient to RAS, crop to the head,
// resample to a cube of `size` voxels at an isotropic spacing that fits the
// head, and normalise intensities to [0, 1]. Label maps follow onto the
// same grid with nearest-neighbour sampling and contiguous ids. The result
// keeps its world placement (`affine`) and the source grid, so
// `toSourceGrid` returns results to the input's own grid.

import { log } from '../log.js';
import {
  cropVolume,
  foregroundBox,
  otsuThreshold,
  type VoxelBox,
} from './crop.js';
import { boxWorldBounds, checkGrid, type Grid, type WorldBounds } from './grid.js';
import {
  foregroundWindow,
  normalizeIntensity,
  type IntensityOptions,
  type IntensityWindow,
} from './intensity.js';
import { remapLabels, restoreLabels } from './labels.js';
import { reorientToRas } from './reorient.js';
import { resampleVolume, type InterpolationMode } from './resample.js';
import { groupLabels, type StructureTable } from './structures.js';
import { spacingFromAffine, voxelCount, type Volume } from './volume.js';

export interface PreprocessOptions extends IntensityOptions {
  /** Voxels per side of the output cube (default 128). */
  size?: number;
  /**
   * Isotropic output spacing in mm. By default the spacing is chosen so
   * that the foreground box fits: its longest side divided by `size`.
   */
  spacingMm?: number;
  /** Margin around the foreground box, in mm (default 4). */
  marginMm?: number;
  /** Foreground threshold in source intensities; Otsu's when unset. */
  threshold?: number;
  /** See `ForegroundOptions.minSliceFraction` (default 0.01). */
  minSliceFraction?: number;
  /** Normalise intensities to [0, 1] (default true). */
  normalize?: boolean;
}

/**
 * A volume on the preprocessed grid: a cube of `size` voxels, voxel axes
 * along world +x (R), +y (A), +z (S), `spacingMm` apart. It is a Volume,
 * so writeNifti stores it with its world placement.
 */
export interface PreprocessedVolume extends Volume {
  size: number;
  spacingMm: number;
  /** The grid of the input scan, which `toSourceGrid` returns to. */
  source: Grid;
  /** Foreground box in the voxels of the input reoriented to RAS. */
  box: VoxelBox;
  /** World bounds of the foreground box, in mm. */
  boundsMm: WorldBounds;
  /** Images: the foreground threshold and the normalisation window. */
  intensity?: { threshold: number; window?: IntensityWindow };
  /**
   * Label maps: `labelTable[id]` is the original label value of id, or,
   * after grouping by a structure table, the identity 0..K.
   */
  labelTable?: number[];
  /** Label maps grouped by a structure table: the name of each id. */
  labelNames?: string[];
}

export interface LabelOptions {
  /** Original label values in id order, usually the atlas's table. */
  labelTable?: readonly number[];
  /** Group label codes into structures instead of remapping them. */
  structures?: StructureTable;
  /** Label sampling: 'nearest' (the default) or 'vote'. */
  labelMode?: 'nearest' | 'vote';
}

/** Preprocesses a scan as the file comment describes; the input is kept. */
export function preprocessImage(
  image: Volume,
  options: PreprocessOptions = {},
): PreprocessedVolume {
  const source = 'preprocessImage';
  checkScan(image, source);
  const size = options.size ?? 128;
  if (!Number.isInteger(size) || size < 2) {
    throw new Error(`${source}: size ${size} must be an integer >= 2`);
  }

  const ras = reorientToRas(image);
  const threshold = options.threshold ?? otsuThreshold(ras.data);
  const box = foregroundBox(ras, {
    threshold,
    marginMm: options.marginMm,
    minSliceFraction: options.minSliceFraction,
  });
  const boundsMm = boxWorldBounds(ras.affine, box.start, box.end);
  const grid = cubeGrid(boundsMm, size, options.spacingMm, source);

  const cropped = cropVolume(ras, box);
  const resampled = resampleVolume(cropped, grid, { mode: 'linear' });
  let data = resampled.data;
  let window: IntensityWindow | undefined;
  if (options.normalize ?? true) {
    window = foregroundWindow(cropped.data, threshold, options);
    data = normalizeIntensity(data, window);
  }
  return {
    ...resampled,
    data,
    datatype: 'float32',
    size,
    spacingMm: grid.affine[0],
    source: { dims: [...image.dims], affine: Float64Array.from(image.affine) },
    box,
    boundsMm,
    intensity: window ? { threshold, window } : { threshold },
  };
}

/**
 * Resamples a label map onto the grid of a preprocessed image (nearest
 * neighbour or vote, so no new values appear) and numbers its labels
 * 0..K: by `structures` when given, else by `labelTable`, else by its own
 * values.
 *
 * The label map may lie on any grid: sampling goes through world
 * coordinates. Labels outside the preprocessed grid are dropped, and a map
 * left with none is an error, since that means the two scans do not
 * overlap in world space.
 */
export function preprocessLabels(
  labels: Volume,
  reference: PreprocessedVolume,
  options: LabelOptions = {},
): PreprocessedVolume {
  const source = 'preprocessLabels';
  checkScan(labels, source);
  const remapped = options.structures
    ? {
        data: groupLabels(labels.data, options.structures),
        table: options.structures.names.map((_, id) => id),
      }
    : remapLabels(labels.data, options.labelTable);
  const resampled = resampleVolume(
    { ...labels, data: remapped.data },
    reference,
    { mode: options.labelMode ?? 'nearest' },
  );
  const hadLabels = remapped.data.some((id) => id !== 0);
  if (hadLabels && !resampled.data.some((id) => id !== 0)) {
    throw new Error(
      `${source}: no labelled voxel of the ${labels.dims.join('x')} map ` +
        `falls inside the preprocessed grid; check that the labels and ` +
        `the image share a world space (affine)`,
    );
  }
  const result: PreprocessedVolume = {
    ...resampled,
    datatype: 'float32',
    size: reference.size,
    spacingMm: reference.spacingMm,
    source: { dims: [...labels.dims], affine: Float64Array.from(labels.affine) },
    box: reference.box,
    boundsMm: reference.boundsMm,
    labelTable: remapped.table,
  };
  if (options.structures) result.labelNames = [...options.structures.names];
  return result;
}

/**
 * Preprocesses an image and, when given, its label map on the same grid.
 */
export function preprocess(
  image: Volume,
  options: PreprocessOptions & LabelOptions & { labels?: Volume } = {},
): { image: PreprocessedVolume; labels?: PreprocessedVolume } {
  const preprocessed = preprocessImage(image, options);
  if (!options.labels) return { image: preprocessed };
  const labels = preprocessLabels(options.labels, preprocessed, options);
  return { image: preprocessed, labels };
}

export interface ToSourceOptions {
  /**
   * 'nearest' (the default) or 'vote' for label maps, 'linear' for
   * images; see `InterpolationMode`.
   */
  mode?: InterpolationMode;
  /**
   * Maps ids back to original label values after sampling. Defaults to
   * `preprocessed.labelTable` in the label modes.
   */
  labelTable?: readonly number[];
  /** Value outside the preprocessed grid (default 0). */
  fill?: number;
}

/**
 * Resamples a result on the preprocessed grid (a label map or an image,
 * x fastest) back to the input scan's own grid and affine: for each source
 * voxel, its world position is looked up on the preprocessed grid. Label
 * ids are mapped back to the original values, so a segmentation overlays
 * the input in any viewer.
 */
export function toSourceGrid(
  onGrid: ArrayLike<number> | { data: ArrayLike<number> },
  preprocessed: PreprocessedVolume,
  options: ToSourceOptions = {},
): Volume {
  const source = 'toSourceGrid';
  const values = 'data' in onGrid ? onGrid.data : onGrid;
  const expected = voxelCount(preprocessed.dims);
  if (values.length !== expected) {
    throw new Error(
      `${source}: got ${values.length} values but the preprocessed grid ` +
        `[${preprocessed.dims.join(', ')}] has ${expected}`,
    );
  }
  const mode = options.mode ?? 'nearest';
  const onGridVolume: Volume = {
    data: Float32Array.from(values),
    dims: [...preprocessed.dims],
    spacing: spacingFromAffine(preprocessed.affine),
    affine: preprocessed.affine,
    datatype: 'float32',
    intentCode: 0,
  };
  const target: Grid = {
    dims: preprocessed.source.dims.slice(0, 3),
    affine: preprocessed.source.affine,
  };
  const back = resampleVolume(onGridVolume, target, {
    mode,
    fill: options.fill,
  });
  const table =
    options.labelTable ??
    (mode === 'linear' ? undefined : preprocessed.labelTable);
  if (table) back.data = restoreLabels(back.data, table);
  return back;
}

/**
 * Returns the cube grid centred on the bounds, with spacing `spacingMm` or
 * else the longest side of the bounds divided by `size`.
 */
function cubeGrid(
  bounds: WorldBounds,
  size: number,
  spacingMm: number | undefined,
  source: string,
): Grid {
  const extents = [0, 1, 2].map((axis) => bounds.max[axis] - bounds.min[axis]);
  const longest = Math.max(...extents);
  const spacing = spacingMm ?? longest / size;
  if (!(spacing > 0) || !Number.isFinite(spacing)) {
    throw new Error(`${source}: spacingMm ${spacing} must be positive`);
  }
  if (longest > spacing * size * (1 + 1e-9)) {
    const box = extents.map((extent) => extent.toFixed(1)).join(' x ');
    const side = (spacing * size).toFixed(1);
    log.warn(
      `${source}: the foreground box (${box} mm) is larger than the ` +
        `grid's side of ${side} mm, so its edges are cut off; raise size ` +
        `or spacingMm to keep them`,
    );
  }
  const affine = new Float64Array(16);
  affine[0] = affine[5] = affine[10] = spacing;
  affine[15] = 1;
  for (let axis = 0; axis < 3; axis++) {
    const centre = (bounds.min[axis] + bounds.max[axis]) / 2;
    affine[12 + axis] = centre - (spacing * (size - 1)) / 2;
  }
  return { dims: [size, size, size], affine };
}

/** Checks a scan is a 3D volume of finite values. */
function checkScan(volume: Volume, source: string): void {
  checkGrid(volume, source, 'input');
  if (volume.dims.length !== 3) {
    throw new Error(
      `${source}: input dims [${volume.dims.join(', ')}] must be 3D ` +
        `[nx, ny, nz]; split series and vector images first`,
    );
  }
  if (volume.data.length !== voxelCount(volume.dims)) {
    throw new Error(
      `${source}: input has ${volume.data.length} values but dims ` +
        `[${volume.dims.join(', ')}] need ${voxelCount(volume.dims)}`,
    );
  }
  for (let index = 0; index < volume.data.length; index++) {
    if (!Number.isFinite(volume.data[index])) {
      throw new Error(
        `${source}: value ${volume.data[index]} at index ${index} is not ` +
          `finite`,
      );
    }
  }
}
