// Scores a trained model on labelled test scans. Every scan goes onto the
// atlas grid (preprocessing and affine pre-alignment, as in training) and
// the networks predict there. The metrics compare the predictions with the
// scan's own labels, brought onto the same grid with nearest sampling.
//
// Scored per case: Dice per structure of the final segmentation yhat_m,
// of the general branch yhat_g, of the atlas labels warped by the
// predicted flow (registration), of the atlas labels after the affine
// pre-alignment alone (affine), and of the atlas labels against the
// scan's preprocessed labels with no alignment at all (identity); the
// same for the atlas's full parcellation (every region code) and for a
// chosen subset of codes; local NCC (window 9) of the warped and unwarped
// atlas image with the target; the folding fraction of the flow; and
// HD95 per structure. With `refine`, the registration is also scored after
// instance optimisation (refine.ts) on each case. Runs in browsers too (no
// file access).

import type { RrlMedSam } from '../nn/rrl/model.js';
import { noGrad } from '../autograd/node.js';
import { warp } from '../ops/warp.js';
import type { Tensor } from '../tensor.js';
import { alignedToSourceGrid } from './aligned-volume.js';
import {
  diceScores,
  evaluationPanels,
  foldingFraction,
  hausdorff95Scores,
  meanLocalNcc,
  meanStd,
  summarize,
  type EvaluationReport,
  type Summary,
} from './evaluate/index.js';
import {
  disposePrediction,
  labelsToAtlasSpace,
  predict,
  toAtlasSpace,
  volumeTensor,
  warpLabels,
} from './experiment.js';
import type { LabelEntry, ModelAtlas, ModelPreprocessing } from './model-folder.js';
import { preprocessLabels } from './preprocess.js';
import { DEFAULT_REFINE_MODE, refineRegistration, type RefineOptions } from './refine.js';
import type { StructureTable } from './structures.js';
import type { Volume } from './volume.js';

/**
 * The 17 large MUSE regions scored separately (ventricles, thalamus,
 * caudate, putamen, hippocampus, brain stem, cerebellum), by code.
 */
export const LARGE_MUSE_REGIONS: readonly number[] = Object.freeze([
  4, 11, 51, 52, 59, 60, 36, 37, 57, 58, 47, 48, 35, 38, 39, 40, 41,
]);

/** One labelled test scan. */
export interface TestScan {
  name: string;
  image: Volume;
  labels: Volume;
}

export interface EvaluateOptions {
  labels: readonly LabelEntry[];
  /** Groups the scans' label codes into the model's structures. */
  structures?: StructureTable;
  /** Codes of the region subset scored on its own (default the 17 large). */
  regionSubset?: readonly number[];
  teacher: string;
  steps: { stage1: number; stage2: number };
  /** PNG panels for the first this many cases (default 2). */
  panels?: number;
  /** Called after each case with its index and the case count. */
  onCase?: (done: number, total: number, name: string) => void;
  /**
   * Also score the registration after this instance optimisation of each
   * case (steps 0 or absent: not scored). Its onStep reports the steps of
   * the case in progress.
   */
  refine?: RefineOptions;
}

/** Per-case outputs of evaluateModel, besides the report. */
export interface CaseOutput {
  name: string;
  /** The final segmentation on the scan's own grid (structure ids). */
  segmentation: Volume;
  /** The atlas image warped onto the scan's own grid. */
  warpedAtlas: Volume;
  /** Panels of this case, when it is among the first `panels`. */
  panel?: Uint8Array;
  /** Mean Dice of this case: final, registration, affine, identity. */
  meanDice: Record<'final' | 'general' | 'registration' | 'affine' | 'identity', number>;
}

export interface EvaluationResult {
  report: EvaluationReport;
  cases: CaseOutput[];
}

function mean(values: number[]): number {
  const finite = values.filter(Number.isFinite);
  return finite.length === 0 ? NaN : finite.reduce((a, b) => a + b, 0) / finite.length;
}

/** Returns the region codes (background excluded) that occur in any of the maps. */
export function regionCodes(maps: ArrayLike<number>[]): number[] {
  const codes = new Set<number>();
  for (const map of maps) for (let i = 0; i < map.length; i++) codes.add(map[i]);
  codes.delete(0);
  return [...codes].sort((a, b) => a - b);
}

type Scores = Record<string, number[][]>;

function push(scores: Scores, key: string, values: number[]): void {
  (scores[key] ??= []).push(values);
}

/**
 * Evaluates `model` on `scans` and returns the report with per-case
 * outputs. The atlas is the model's (on its grid, see ModelAtlas); its
 * `regions` enable the region-level Dice.
 */
export async function evaluateModel(
  model: RrlMedSam,
  atlas: ModelAtlas,
  preprocessing: ModelPreprocessing,
  scans: readonly TestScan[],
  options: EvaluateOptions,
): Promise<EvaluationResult> {
  const op = 'evaluateModel';
  if (scans.length === 0) throw new RangeError(`${op}: no test scans to score`);
  const ids = options.labels.map((entry) => entry.id).filter((id) => id !== 0);
  const names = options.labels.filter((entry) => entry.id !== 0).map((entry) => entry.name);
  const subset = options.regionSubset ?? LARGE_MUSE_REGIONS;
  const size = preprocessing.size;
  const shape = [size, size, size];
  const [sx, sy, sz] = atlas.image.spacing;
  const spacingMm = [sz, sy, sx];
  const atlasTensor = volumeTensor(atlas.image);
  const scores: Scores = {};
  const ncc = { registration: [] as number[], identity: [] as number[], refined: [] as number[] };
  const folding: number[] = [];
  const foldingRefined: number[] = [];
  const refineSteps = options.refine?.steps ?? 0;
  const outputs: CaseOutput[] = [];
  // The region codes scored: those of the atlas parcellation, so every
  // case is scored on the same set.
  const atlasRegionCodes = atlas.regions ? regionCodes([atlas.regions.data]) : [];
  const subsetCodes = subset.filter((code) => atlasRegionCodes.includes(code));
  try {
    for (const [index, scan] of scans.entries()) {
      const placed = await toAtlasSpace(scan.image, atlasTensor, preprocessing);
      let target: Tensor | null = placed.image;
      try {
        const truth = await labelsToAtlasSpace(scan.labels, placed, options.structures);
        const unaligned = preprocessLabels(
          scan.labels,
          placed.preprocessed,
          options.structures ? { structures: options.structures } : {},
        );
        const prediction = predict(model, atlasTensor, target);
        try {
          const final = await prediction.final.toArray();
          const general = await prediction.general.toArray();
          const registered = await warpLabels(atlas.labels, prediction.flow);
          const flow = await prediction.flow.toArray();
          const perCase = {
            final: diceScores(final, truth, ids),
            general: diceScores(general, truth, ids),
            registration: diceScores(registered, truth, ids),
            affine: diceScores(atlas.labels.data, truth, ids),
            identity: diceScores(atlas.labels.data, unaligned.data, ids),
          };
          for (const [key, values] of Object.entries(perCase)) push(scores, key, values);
          push(scores, 'hd95Final', hausdorff95Scores(final, truth, shape, spacingMm, ids));
          push(scores, 'hd95Registration', hausdorff95Scores(registered, truth, shape, spacingMm, ids));
          ncc.registration.push(await meanLocalNcc(prediction.warped, target));
          ncc.identity.push(await meanLocalNcc(atlasTensor, target));
          folding.push(foldingFraction(flow, prediction.flow.shape));

          const truthRegions = atlas.regions ? await labelsToAtlasSpace(scan.labels, placed) : null;
          if (atlas.regions && truthRegions) {
            const regions = await warpLabels(atlas.regions, prediction.flow);
            const unalignedRegions = preprocessLabels(scan.labels, placed.preprocessed);
            const codesBack = unalignedRegions.labelTable!;
            const identityRegions = Float32Array.from(unalignedRegions.data, (id) => codesBack[id]);
            for (const [key, codes] of [
              ['Regions', atlasRegionCodes],
              ['Subset', subsetCodes],
            ] as const) {
              push(scores, `registration${key}`, diceScores(regions, truthRegions, codes));
              push(scores, `affine${key}`, diceScores(atlas.regions.data, truthRegions, codes));
              push(scores, `identity${key}`, diceScores(atlas.regions.data, identityRegions, codes));
            }
          }

          if (refineSteps > 0) {
            const refined = await refineRegistration(model, atlasTensor, target, options.refine!);
            try {
              const refinedLabels = await warpLabels(atlas.labels, refined.flow);
              push(scores, 'refined', diceScores(refinedLabels, truth, ids));
              const warpedRefined = noGrad(() => warp(atlasTensor, refined.flow));
              ncc.refined.push(await meanLocalNcc(warpedRefined, target));
              warpedRefined.dispose();
              foldingRefined.push(foldingFraction(await refined.flow.toArray(), refined.flow.shape));
              if (atlas.regions && truthRegions) {
                const regions = await warpLabels(atlas.regions, refined.flow);
                push(scores, 'refinedRegions', diceScores(regions, truthRegions, atlasRegionCodes));
                push(scores, 'refinedSubset', diceScores(regions, truthRegions, subsetCodes));
              }
            } finally {
              refined.flow.dispose();
            }
          }

          const labelTable = options.labels.map((entry) => entry.id);
          const segmentation = alignedToSourceGrid(final, placed.preprocessed, placed.alignment, {
            labelTable,
          });
          const warpedValues = await prediction.warped.toArray();
          const warpedAtlas = alignedToSourceGrid(warpedValues, placed.preprocessed, placed.alignment, {
            mode: 'linear',
          });
          const output: CaseOutput = {
            name: scan.name,
            segmentation: { ...segmentation, datatype: 'int16', description: 'rrl-medsam segmentation' },
            warpedAtlas: { ...warpedAtlas, datatype: 'float32', description: 'rrl-medsam warped atlas' },
            meanDice: {
              final: mean(perCase.final),
              general: mean(perCase.general),
              registration: mean(perCase.registration),
              affine: mean(perCase.affine),
              identity: mean(perCase.identity),
            },
          };
          if (index < (options.panels ?? 2)) {
            output.panel = evaluationPanels({
              shape,
              affine: atlas.image.affine,
              atlas: atlas.image.data,
              atlasLabels: atlas.labels.data,
              target: await target.toArray(),
              warpedAtlas: warpedValues,
              prediction: final,
              truth,
            });
          }
          outputs.push(output);
        } finally {
          disposePrediction(prediction);
        }
      } finally {
        target?.dispose();
        target = null;
      }
      options.onCase?.(index + 1, scans.length, scan.name);
    }
  } finally {
    atlasTensor.dispose();
  }

  const summary = (key: string, labelNames = names): Summary => summarize(scores[key] ?? [], labelNames);
  const extra: Record<string, Summary> = {
    'affine (structures)': summary('affine'),
  };
  if (atlas.regions) {
    const regionNames = atlasRegionCodes.map(String);
    const subsetNames = subsetCodes.map(String);
    extra[`registration (${regionNames.length} regions)`] = summary('registrationRegions', regionNames);
    extra[`affine (${regionNames.length} regions)`] = summary('affineRegions', regionNames);
    extra[`identity (${regionNames.length} regions)`] = summary('identityRegions', regionNames);
    extra[`registration (${subsetNames.length} large regions)`] = summary('registrationSubset', subsetNames);
    extra[`affine (${subsetNames.length} large regions)`] = summary('affineSubset', subsetNames);
    extra[`identity (${subsetNames.length} large regions)`] = summary('identitySubset', subsetNames);
  }
  if (refineSteps > 0 && atlas.regions) {
    extra[`refined (${atlasRegionCodes.length} regions)`] = summary('refinedRegions', atlasRegionCodes.map(String));
    extra[`refined (${subsetCodes.length} large regions)`] = summary('refinedSubset', subsetCodes.map(String));
  }
  const report: EvaluationReport = {
    teacher: options.teacher,
    size,
    steps: options.steps,
    dice: {
      final: summary('final'),
      general: summary('general'),
      registration: summary('registration'),
      identity: summary('identity'),
    },
    ncc: { registration: meanStd(ncc.registration), identity: meanStd(ncc.identity) },
    folding: meanStd(folding),
    hd95: { final: summary('hd95Final'), registration: summary('hd95Registration') },
    extra,
  };
  if (refineSteps > 0) {
    report.refine = { steps: refineSteps, mode: options.refine?.mode ?? DEFAULT_REFINE_MODE, folding: meanStd(foldingRefined) };
    report.dice.refined = summary('refined');
    report.ncc.refined = meanStd(ncc.refined);
  }
  return { report, cases: outputs };
}
