// PNG panels of one evaluation case: atlas, target, warped atlas, and the
// target under the predicted and the true label maps.

import { panelPng, type Panel, type PanelOptions } from '../preview.js';
import type { VolumeLike } from '../slices.js';
import { createVolume } from '../volume.js';
import { checkShape, checkSpacing } from './checks.js';
import type { LabelMap } from './dice.js';

/** The images and label maps of one test case on the model grid. */
export interface EvaluationCase {
  /** Grid [D, H, W] of every array below, all row-major (W fastest). */
  shape: readonly number[];
  /**
   * Voxel size in mm along [D, H, W] (default 1 mm). The grid is taken as
   * RAS-oriented unless `affine` is given.
   */
  spacingMm?: readonly number[];
  /**
   * Voxel-to-world affine of the grid, 16 values column-major as
   * Volume.affine, with voxel axes (i, j, k) = (W, H, D). Overrides
   * `spacingMm`.
   */
  affine?: ArrayLike<number>;
  atlas: ArrayLike<number>;
  /** Atlas label map, drawn over the atlas panel when given. */
  atlasLabels?: LabelMap;
  target: ArrayLike<number>;
  /** The atlas image warped onto the target. */
  warpedAtlas: ArrayLike<number>;
  /** Predicted label map of the target. */
  prediction: LabelMap;
  /** True label map of the target. */
  truth: LabelMap;
}

/** Options of the panel rendering; `planes` defaults to axial and coronal. */
export type EvaluationPanelOptions = PanelOptions;

/** Panel titles, in column order. */
export const EVALUATION_PANEL_TITLES = [
  'atlas',
  'target',
  'warped atlas',
  'predicted',
  'truth',
] as const;

/**
 * Renders one test case as PNG bytes: columns atlas, target, warped atlas,
 * target with the predicted labels, and target with the true labels, with
 * one row per plane (the middle axial and coronal slices by default). Each
 * label id keeps its colour in every panel, so prediction and truth compare
 * directly. Writing the bytes to a file is the caller's job.
 *
 * @example
 * const png = evaluationPanels({ shape: [48, 48, 48], atlas, target,
 *   warpedAtlas, prediction, truth });
 */
export function evaluationPanels(
  evaluationCase: EvaluationCase,
  options: EvaluationPanelOptions = {},
): Uint8Array {
  const op = 'evaluationPanels';
  const { shape } = evaluationCase;
  const arrays = [
    'atlas',
    'atlasLabels',
    'target',
    'warpedAtlas',
    'prediction',
    'truth',
  ] as const;
  for (const name of arrays) {
    const values = evaluationCase[name];
    if (values !== undefined) checkShape(op, shape, values.length, name);
  }
  const [d, h, w] = shape;
  const dims = [w, h, d];
  const spacing = checkSpacing(op, evaluationCase.spacingMm ?? [1, 1, 1]);
  const affine = evaluationCase.affine;
  if (affine !== undefined && affine.length !== 16) {
    throw new RangeError(
      `${op}: affine has ${affine.length} values; expected a 4x4 matrix ` +
        '(16 values, column-major)',
    );
  }
  const volume = (data: ArrayLike<number>): VolumeLike =>
    affine
      ? createVolume(Float32Array.from(data), dims, affine)
      : { data, dims, spacing: [spacing[2], spacing[1], spacing[0]] };

  const target = volume(evaluationCase.target);
  const atlasLabels = evaluationCase.atlasLabels;
  const panels: Panel[] = [
    {
      title: EVALUATION_PANEL_TITLES[0],
      image: volume(evaluationCase.atlas),
      labels: atlasLabels ? volume(atlasLabels) : undefined,
    },
    { title: EVALUATION_PANEL_TITLES[1], image: target },
    {
      title: EVALUATION_PANEL_TITLES[2],
      image: volume(evaluationCase.warpedAtlas),
    },
    {
      title: EVALUATION_PANEL_TITLES[3],
      image: target,
      labels: volume(evaluationCase.prediction),
    },
    {
      title: EVALUATION_PANEL_TITLES[4],
      image: target,
      labels: volume(evaluationCase.truth),
    },
  ];
  return panelPng(panels, {
    ...options,
    planes: options.planes ?? ['axial', 'coronal'],
  });
}
