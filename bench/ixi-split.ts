// The embedded IXI split on the atlas's grid, for the experiments that
// train one part of RRL-MedSAM alone (registration-variants.ts,
// segmentation-variants.ts) and score it with the demo's labels.

import { embeddedManifest } from '../src/cli/demo.js';
import { loadManifest } from '../src/pipeline/manifest-file.js';
import { readNiftiFile } from '../src/pipeline/nifti-file.js';
import {
  DEFAULT_PREPROCESSING,
  labelsToAtlasSpace,
  prepareModelAtlas,
  toAtlasSpace,
  volumeTensor,
} from '../src/pipeline/experiment.js';
import { diceScores } from '../src/pipeline/evaluate/dice.js';
import { meanStd } from '../src/pipeline/evaluate/summary.js';
import { LARGE_MUSE_REGIONS, regionCodes } from '../src/pipeline/evaluation-run.js';
import { keep, type Tensor } from '../src/tensor.js';
import { UsageError } from '../scripts/run-main.js';

/** A scan on the atlas grid with its MUSE codes and structure ids there. */
export interface Scored {
  image: Tensor;
  regions: Float32Array;
  structures: Float32Array;
}

export interface Split {
  atlas: Tensor;
  atlasRegions: Float32Array;
  /** The atlas's structure ids (0 the background) on its grid. */
  atlasStructures: Float32Array;
  /** Structures and the background: the segmentation's class count. */
  numClasses: number;
  /** The atlas's region codes, and those of them among the 17 large regions. */
  codes: number[];
  largeCodes: number[];
  train: Scored[];
  test: Scored[];
}

/**
 * Reads the embedded manifest and places the atlas, the five training
 * scans and the four test scans on the atlas's grid with the demo's
 * preprocessing. Every scan keeps its labels (the training scans' come
 * from labels/, named after the scan) for scoring only.
 */
export async function prepareSplit(): Promise<Split> {
  const loaded = await loadManifest(embeddedManifest());
  const { manifest, structures } = loaded;
  if (!structures) {
    throw new Error(
      'bench/ixi-split: the embedded manifest has no structure table; restore the "structures" entry of data/ixi-brain/manifest.json',
    );
  }
  const atlas = prepareModelAtlas(
    await readNiftiFile(loaded.resolve(manifest.atlas.image)),
    await readNiftiFile(loaded.resolve(manifest.atlas.labels)),
    DEFAULT_PREPROCESSING,
    structures,
  );
  const atlasImage = keep(volumeTensor(atlas.image));
  const place = async (image: string, labels: string): Promise<Scored> => {
    const scan = await toAtlasSpace(await readNiftiFile(loaded.resolve(image)), atlasImage, DEFAULT_PREPROCESSING);
    const labelVolume = await readNiftiFile(loaded.resolve(labels));
    return {
      image: scan.image,
      regions: await labelsToAtlasSpace(labelVolume, scan),
      structures: await labelsToAtlasSpace(labelVolume, scan, structures),
    };
  };
  const labelsOf = (image: string) => image.replace('images/', 'labels/').replace('_t1.nii.gz', '_labels.nii.gz');
  const train: Scored[] = [];
  for (const image of manifest.train) train.push(await place(image, labelsOf(image)));
  const test: Scored[] = [];
  for (const entry of manifest.test) test.push(await place(entry.image, entry.labels));
  const atlasRegions = Float32Array.from(atlas.regions.data);
  const codes = regionCodes([atlasRegions]);
  const largeCodes = LARGE_MUSE_REGIONS.filter((code) => codes.includes(code));
  return {
    atlas: atlasImage,
    atlasRegions,
    atlasStructures: Float32Array.from(atlas.labels.data),
    numClasses: structures.names.length,
    codes,
    largeCodes,
    train,
    test,
  };
}

/** Returns the mean of the finite values (Dice is NaN for a label absent from both maps). */
export function meanOf(values: readonly number[]): number {
  return meanStd(values).mean;
}

/** Returns the mean over `maps` of each map's mean Dice against `truths[i]` over `ids`. */
export function meanDice(
  maps: readonly ArrayLike<number>[],
  truths: readonly Float32Array[],
  ids: readonly number[],
): number {
  return meanOf(maps.map((values, index) => meanOf(diceScores(values, truths[index], ids))));
}

/** Returns the atlas's map `values` as a [1, 1, D, H, W] tensor on its grid. */
export function atlasGridTensor(split: Split, values: Float32Array): Tensor {
  const [depth, height, width] = split.atlas.shape.slice(2);
  return volumeTensor({ data: values, dims: [width, height, depth] });
}

/** Command line of an experiment script: iterations and the variants to run. */
export interface VariantArguments {
  steps: number;
  variants: string[];
}

/** Returns the usage line of bench/NAME.ts, a script that times `variants`. */
export function variantUsage(name: string, variants: readonly string[]): string {
  return (
    `usage: npx tsx bench/${name}.ts [--steps N] [--variant NAME]...\n` +
    `variants: ${variants.join(', ')} (default: all)`
  );
}

/**
 * Parses `[--steps N] [--variant NAME]...` for the script `name` (all of
 * `variants` when none is given). Throws a UsageError with the usage on a
 * bad argument.
 */
export function parseVariantArguments(
  name: string,
  argv: readonly string[],
  variants: readonly string[],
): VariantArguments {
  const usage = variantUsage(name, variants);
  const parsed: VariantArguments = { steps: 300, variants: [] };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new UsageError(`bench/${name}: ${flag} is missing its value\n${usage}`);
    if (flag === '--steps') {
      parsed.steps = Number(value);
      if (!Number.isInteger(parsed.steps) || parsed.steps < 1) {
        throw new UsageError(`bench/${name}: --steps ${value} must be a positive integer`);
      }
    } else if (flag === '--variant') {
      if (!variants.includes(value)) throw new UsageError(`bench/${name}: unknown variant ${value}\n${usage}`);
      parsed.variants.push(value);
    } else {
      throw new UsageError(`bench/${name}: unknown argument ${flag}\n${usage}`);
    }
  }
  if (parsed.variants.length === 0) parsed.variants = [...variants];
  return parsed;
}
