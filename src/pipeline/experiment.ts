// The one-shot experiment's data path, shared by the CLI and the browser
// page: the atlas onto the model's grid, every other scan onto the atlas's
// grid (preprocessing, then an affine pre-alignment), the networks'
// predictions there, and the results back on the input scan's own grid.
//
// Space: the networks work on the atlas grid. A scan is first preprocessed
// to its own cube grid of the model's size, then aligned affinely to the
// atlas, which resamples it onto the atlas grid. Predictions made there
// return to the scan's file grid through alignedToSourceGrid, which
// composes the inverse alignment and the inverse preprocessing.

import { noGrad } from '../autograd/node.js';
import type { RrlMedSam } from '../nn/rrl/model.js';
import { argmax } from '../ops/reduce.js';
import { warp } from '../ops/warp.js';
import { keep, tensor, tidy, type Tensor } from '../tensor.js';
import { alignAffine, type AlignAffineOptions } from './affine-align.js';
import { affineFlow, identityAffine } from './affine-flow.js';
import { alignedToSourceGrid, type AlignmentRecord } from './aligned-volume.js';
import { restoreLabels } from './labels.js';
import { refineRegistration, type RefineOptions } from './refine.js';
import type { LabelEntry, ModelAtlas, ModelPreprocessing } from './model-folder.js';
import {
  preprocessImage,
  preprocessLabels,
  type PreprocessedVolume,
} from './preprocess.js';
import type { StructureTable } from './structures.js';
import type { Volume } from './volume.js';

/** The default preprocessing of the CLI: a 64^3 cube, 4 mm margin, affine. */
export const DEFAULT_PREPROCESSING: Readonly<ModelPreprocessing> = Object.freeze({
  size: 64,
  marginMm: 4,
  align: 'affine',
});

/** The atlas prepared for a model, with its label table. */
export interface PreparedModelAtlas extends ModelAtlas {
  image: PreprocessedVolume;
  labels: PreprocessedVolume;
  regions: PreprocessedVolume;
  /** Class 0 (background) and one entry per structure. */
  labelEntries: LabelEntry[];
}

/**
 * Preprocesses the atlas image onto the model's cube grid, its labels
 * grouped into structures (ids 0..K), and its full parcellation with the
 * original codes (nearest sampling, for region-level scoring).
 */
export function prepareModelAtlas(
  image: Volume,
  labels: Volume,
  preprocessing: ModelPreprocessing,
  structures?: StructureTable,
): PreparedModelAtlas {
  const pre = preprocessImage(image, {
    size: preprocessing.size,
    marginMm: preprocessing.marginMm,
  });
  const regionsOnGrid = preprocessLabels(labels, pre);
  const regions: PreprocessedVolume = {
    ...regionsOnGrid,
    data: restoreLabels(regionsOnGrid.data, regionsOnGrid.labelTable!),
    labelTable: undefined,
  };
  let grouped: PreprocessedVolume;
  let labelEntries: LabelEntry[];
  if (structures) {
    grouped = preprocessLabels(labels, pre, { structures });
    labelEntries = structures.names.map((name, id) => ({ id, name }));
  } else {
    grouped = regionsOnGrid;
    labelEntries = regionsOnGrid.labelTable!.map((code, id) => ({
      id,
      name: id === 0 ? 'background' : `label ${code}`,
    }));
  }
  return { image: pre, labels: grouped, regions, labelEntries };
}

/** Uploads a volume's values as a [1, 1, D, H, W] tensor (x fastest = W). */
export function volumeTensor(volume: Pick<Volume, 'data' | 'dims'>): Tensor {
  const [nx, ny, nz] = volume.dims;
  return tensor(volume.data, [1, 1, nz, ny, nx]);
}

/** A scan on the atlas grid, with what it takes to go back. */
export interface AtlasSpaceScan {
  /** The scan preprocessed to its own cube grid. */
  preprocessed: PreprocessedVolume;
  /** Atlas voxel to preprocessed-scan voxel. */
  alignment: AlignmentRecord;
  /** The scan's image on the atlas grid [1, 1, D, H, W] (kept). */
  image: Tensor;
  /** Loss of the affine fit per step (empty without alignment). */
  lossHistory: number[];
}

/**
 * Preprocesses `scan` like the atlas and aligns it affinely onto the
 * atlas grid (or, with align 'none', uses its own cube grid as is).
 */
export async function toAtlasSpace(
  scan: Volume,
  atlasImage: Tensor,
  preprocessing: ModelPreprocessing,
  options: AlignAffineOptions = {},
): Promise<AtlasSpaceScan> {
  const preprocessed = preprocessImage(scan, {
    size: preprocessing.size,
    marginMm: preprocessing.marginMm,
  });
  const size = preprocessing.size;
  const shape: [number, number, number] = [size, size, size];
  if (preprocessing.align === 'none') {
    return {
      preprocessed,
      alignment: { matrix: identityAffine(), shape },
      image: keep(volumeTensor(preprocessed)),
      lossHistory: [],
    };
  }
  const moving = volumeTensor(preprocessed);
  try {
    const result = await alignAffine(atlasImage, moving, options);
    result.flow.dispose();
    return {
      preprocessed,
      alignment: { matrix: result.matrix, shape: result.shape },
      image: result.warped,
      lossHistory: result.lossHistory,
    };
  } finally {
    moving.dispose();
  }
}

/**
 * Brings a label map of `scan` onto the atlas grid with the scan's
 * alignment (nearest sampling): grouped into structure ids when
 * `structures` is given, else with the original codes. Returns the values
 * on the atlas grid, x fastest.
 */
export async function labelsToAtlasSpace(
  labels: Volume,
  scan: AtlasSpaceScan,
  structures?: StructureTable,
): Promise<Float32Array> {
  const onScanGrid = preprocessLabels(
    labels,
    scan.preprocessed,
    structures ? { structures } : {},
  );
  const values = noGrad(() =>
    tidy(() => {
      const ids = volumeTensor(onScanGrid);
      const flow = alignmentFlow(scan.alignment, ids.shape);
      return warp(ids, flow, { mode: 'nearest' });
    }),
  );
  const ids = await values.toArray();
  values.dispose();
  return structures ? ids : restoreLabels(ids, onScanGrid.labelTable!);
}

/** Returns the flow of an alignment for a volume of `shape`. */
function alignmentFlow(alignment: AlignmentRecord, shape: readonly number[]): Tensor {
  return affineFlow(alignment.matrix, shape);
}

/** The networks' outputs for one target on the atlas grid. */
export interface Prediction {
  /** argmax of yhat_m, class ids [1, 1, D, H, W]. */
  final: Tensor;
  /** argmax of yhat_g, class ids [1, 1, D, H, W]. */
  general: Tensor;
  /** phi [1, 3, D, H, W] in voxels, warping the atlas onto the target. */
  flow: Tensor;
  /** The atlas image warped by phi [1, 1, D, H, W]. */
  warped: Tensor;
}

/** Runs both branches on `target` without recording gradients. */
export function predict(model: RrlMedSam, atlasImage: Tensor, target: Tensor): Prediction {
  return noGrad(() =>
    tidy(() => {
      const wasTraining = model.training;
      model.eval();
      try {
        const out = model.forward(atlasImage, target);
        return {
          final: argmax(out.medicalProbs, 1, { keepDims: true }),
          general: argmax(out.generalProbs, 1, { keepDims: true }),
          flow: out.flow,
          warped: warp(atlasImage, out.flow),
        };
      } finally {
        if (wasTraining) model.train();
      }
    }),
  );
}

/** Disposes the tensors of a prediction. */
export function disposePrediction(prediction: Prediction): void {
  for (const t of Object.values(prediction)) t.dispose();
}

/** Warps an atlas label map (ids or codes on the atlas grid) by `flow`. */
export async function warpLabels(labels: Volume, flow: Tensor): Promise<Float32Array> {
  const warped = noGrad(() =>
    tidy(() => warp(volumeTensor(labels), flow, { mode: 'nearest' })),
  );
  const values = await warped.toArray();
  warped.dispose();
  return values;
}

/** Results of segmenting one scan, on the scan's own file grid. */
export interface SegmentationResult {
  /** Structure ids on the input's grid and affine (uint8/int16 labels). */
  labels: Volume;
  /** The atlas image warped onto the input's grid. */
  warpedAtlas: Volume;
  /**
   * The atlas label map warped (nearest) onto the input's grid, with the
   * same ids as `labels`: the registration branch's segmentation. Present
   * when SegmentScanOptions.warpedLabels asked for it.
   */
  warpedLabels?: Volume;
  /**
   * The same results on the atlas grid (x fastest), with the aligned scan,
   * for scoring and previews.
   */
  onAtlasGrid: { image: Float32Array; labels: Float32Array; warped: Float32Array; warpedLabels?: Float32Array };
  /** The scan's preprocessing and alignment onto the atlas grid. */
  placement: Omit<AtlasSpaceScan, 'image'>;
  /** Wall time of each part in milliseconds. */
  timings: { preprocess: number; inference: number; total: number };
}

/**
 * The parts of segmentScan, in order, as its `onStage` callback reports
 * them: preprocessing with the affine fit, both branches on the atlas
 * grid, and the resampling onto the input's grid.
 */
export type SegmentationStage = 'align' | 'inference' | 'resample';

/** Options of segmentScan besides its progress callback. */
export interface SegmentScanOptions {
  /** Also warp the atlas label map onto the input (default false). */
  warpedLabels?: boolean;
  /**
   * Refine the registration on this scan before the atlas is warped
   * (refineRegistration). The final label map `labels` does not change.
   */
  refine?: RefineOptions;
}

/**
 * Segments `scan` with a trained model: preprocessing and alignment,
 * both branches on the atlas grid, then the final label map, the warped
 * atlas and the warped atlas labels resampled onto the input's own grid.
 * `onStage` is called as each part starts, for progress displays.
 */
export async function segmentScan(
  model: RrlMedSam,
  atlas: ModelAtlas,
  preprocessing: ModelPreprocessing,
  scan: Volume,
  labelIds: readonly number[],
  onStage: (stage: SegmentationStage) => void = () => undefined,
  options: SegmentScanOptions = {},
): Promise<SegmentationResult> {
  const started = performance.now();
  const atlasImage = volumeTensor(atlas.image);
  let placed: AtlasSpaceScan | null = null;
  try {
    onStage('align');
    placed = await toAtlasSpace(scan, atlasImage, preprocessing);
    const preprocessDone = performance.now();
    onStage('inference');
    const prediction = predict(model, atlasImage, placed.image);
    let labels: Float32Array;
    let warped: Float32Array;
    let warpedLabels: Float32Array | undefined;
    let image: Float32Array;
    try {
      image = await placed.image.toArray();
      labels = await prediction.final.toArray();
      if ((options.refine?.steps ?? 0) > 0) {
        const refined = await refineRegistration(model, atlasImage, placed.image, options.refine!);
        const refinedWarp = noGrad(() => warp(atlasImage, refined.flow));
        warped = await refinedWarp.toArray();
        if (options.warpedLabels) warpedLabels = await warpLabels(atlas.labels, refined.flow);
        refinedWarp.dispose();
        refined.flow.dispose();
      } else {
        warped = await prediction.warped.toArray();
        if (options.warpedLabels) warpedLabels = await warpLabels(atlas.labels, prediction.flow);
      }
    } finally {
      disposePrediction(prediction);
    }
    const inferenceDone = performance.now();
    onStage('resample');
    const back = alignedToSourceGrid(labels, placed.preprocessed, placed.alignment, {
      labelTable: labelIds,
    });
    const warpedBack = alignedToSourceGrid(warped, placed.preprocessed, placed.alignment, {
      mode: 'linear',
    });
    const warpedLabelsBack =
      warpedLabels &&
      alignedToSourceGrid(warpedLabels, placed.preprocessed, placed.alignment, { labelTable: labelIds });
    const finished = performance.now();
    // The outputs keep the input's qform and sform codes, so viewers treat
    // their affine as the same kind of space as the input's.
    const codes = { sformCode: scan.sformCode, qformCode: scan.qformCode };
    return {
      labels: { ...back, ...codes, datatype: 'int16', description: 'rrl-medsam segmentation' },
      warpedAtlas: { ...warpedBack, ...codes, datatype: 'float32', description: 'rrl-medsam warped atlas' },
      warpedLabels: warpedLabelsBack && {
        ...warpedLabelsBack,
        ...codes,
        datatype: 'int16',
        description: 'rrl-medsam warped atlas labels',
      },
      onAtlasGrid: { image, labels, warped, warpedLabels },
      placement: {
        preprocessed: placed.preprocessed,
        alignment: placed.alignment,
        lossHistory: placed.lossHistory,
      },
      timings: {
        preprocess: preprocessDone - started,
        inference: inferenceDone - preprocessDone,
        total: finished - started,
      },
    };
  } finally {
    atlasImage.dispose();
    placed?.image.dispose();
  }
}
