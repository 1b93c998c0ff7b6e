// The aligned grid of a preprocessed scan: the grid that alignAffine
// resampled it onto, placed in the scan's own world space, so results
// computed there return to the input's grid through `toSourceGrid`.
//
// Aligned voxel p (a voxel of the fixed grid) contains the scan's value at its
// preprocessed voxel M p. In world mm that is movingAffine * M_ijk * p, so
// the aligned grid's affine is movingAffine * M_ijk; resampling through
// world coordinates then applies the inverse of M implicitly.

import { affineToIjk } from './affine-flow.js';
import { multiplyAffine } from './grid.js';
import {
  toSourceGrid,
  type PreprocessedVolume,
  type ToSourceOptions,
} from './preprocess.js';
import { spacingFromAffine, voxelCount, type Volume } from './volume.js';

/** The parts of an alignment that the aligned grid is built from. */
export interface AlignmentRecord {
  /** Fixed voxel (d, h, w) to moving voxel, row-major 3x4 [A | t]. */
  matrix: ArrayLike<number>;
  /** Spatial shape [D, H, W] of the fixed (aligned) grid. */
  shape: readonly [number, number, number];
}

/** A preprocessed scan on its aligned grid, with the alignment used. */
export interface AlignedVolume extends PreprocessedVolume {
  alignment: {
    matrix: Float64Array;
    /** The preprocessed grid's affine before the alignment. */
    preprocessedAffine: Float64Array;
  };
}

/**
 * Places `data` (values on the aligned grid, x fastest, such as the
 * warped image or a label map predicted there) in the world space of
 * `moving`, the preprocessed scan that was aligned. The result keeps the
 * scan's source grid and label table, so `toSourceGrid(result, aligned)`
 * and `writeNifti` treat it like any preprocessed volume: it overlays the
 * input scan in a viewer.
 *
 * NOTE: the aligned grid's voxel axes are those of the fixed grid mapped
 * by the affine, so they are oblique in world space. `spacingMm` and
 * `size` still describe the preprocessed grid, but `spacing` is measured
 * from the new affine.
 */
export function alignedVolume(
  moving: PreprocessedVolume,
  alignment: AlignmentRecord,
  data: Float32Array,
): AlignedVolume {
  const source = 'alignedVolume';
  const [d, h, w] = alignment.shape;
  const dims = [w, h, d];
  if (data.length !== voxelCount(dims)) {
    throw new RangeError(
      `${source}: data has ${data.length} values but the aligned grid ` +
        `[${alignment.shape.join(', ')}] (D, H, W) has ${voxelCount(dims)}`,
    );
  }
  const affine = multiplyAffine(moving.affine, affineToIjk(alignment.matrix));
  return {
    ...moving,
    data,
    dims,
    affine,
    spacing: spacingFromAffine(affine),
    alignment: {
      matrix: Float64Array.from(alignment.matrix),
      preprocessedAffine: Float64Array.from(moving.affine),
    },
  };
}

/**
 * Resamples a result on the aligned grid (a label map by default) back to
 * the grid of the input scan that `moving` was preprocessed from. It takes
 * one resampling step, because the inverses of the alignment and of the
 * preprocessing compose through world coordinates. The options are those
 * of toSourceGrid.
 *
 * @example
 * const result = await alignAffine(atlas.image, scan.image);
 * const back = alignedToSourceGrid(predicted, scan.image, result);
 * await writeNiftiFile('segmentation.nii.gz', back);
 */
export function alignedToSourceGrid(
  onAligned: ArrayLike<number> | { data: ArrayLike<number> },
  moving: PreprocessedVolume,
  alignment: AlignmentRecord,
  options: ToSourceOptions = {},
): Volume {
  const values = 'data' in onAligned ? onAligned.data : onAligned;
  const aligned = alignedVolume(moving, alignment, Float32Array.from(values));
  return toSourceGrid(aligned, aligned, options);
}
