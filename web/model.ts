// The page's model: decoding a model folder from the server or a drop,
// training a quick one in the tab on the embedded scans, and packing the
// loaded model back into model-folder files.

import { RRL_PRESETS } from '../src/nn/rrl/config.js';
import { RrlMedSam } from '../src/nn/rrl/model.js';
import { createAugmenter } from '../src/pipeline/augment.js';
import {
  prepareModelAtlas,
  toAtlasSpace,
  volumeTensor,
} from '../src/pipeline/experiment.js';
import { parseManifest } from '../src/pipeline/manifest.js';
import {
  MODEL_FILES,
  MODEL_FORMAT,
  decodeModelFolder,
  encodeAtlas,
  encodeDescriptor,
  encodeWeights,
  type LoadedModel,
  type ModelFiles,
  type ModelPreprocessing,
} from '../src/pipeline/model-folder.js';
import { readNifti } from '../src/pipeline/nifti.js';
import { loadStructureTable } from '../src/pipeline/structures.js';
import { RANDOM_TEACHER } from '../src/pipeline/teacher.js';
import {
  createTrainer,
  variantModelOptions,
  type StepResult,
} from '../src/pipeline/train/index.js';
import type { Tensor } from '../src/tensor.js';
import { fetchBytes, fetchRequired } from './files.js';
import { PageError } from './messages.js';

/** A decoded model and where it came from, for the status line. */
export interface PageModel extends LoadedModel {
  source: string;
}

/** The model folder's listing that scripts/serve-web.ts serves. */
interface ServedListing {
  folder: string | null;
  files: string[];
}

/**
 * Decodes model-folder files. Names the missing files when the drop is
 * not a model folder at all (for example a scan dropped on the wrong
 * zone), before decodeModelFolder checks the rest.
 */
export function decodeModelFiles(source: string, files: ModelFiles): PageModel {
  const required = [
    MODEL_FILES.descriptor,
    MODEL_FILES.weights,
    MODEL_FILES.atlas,
    MODEL_FILES.atlasLabels,
  ];
  const missing = required.filter((name) => !files.has(name));
  if (missing.length > 0) {
    const given = files.size > 0 ? [...files.keys()].join(', ') : 'no files';
    throw new PageError(
      'model-missing-files',
      `${source}: not a complete model folder`,
      `Missing ${missing.join(', ')} (given: ${given}). A model folder ` +
        'written by `rrl-medsam train` or `npm run demo` holds ' +
        `${required.join(', ')}; drop all of them, or the folder itself.`,
    );
  }
  return { ...decodeModelFolder(source, files), source };
}

/** Loads the model folder the server offers, or returns null if none. */
export async function loadServedModel(): Promise<PageModel | null> {
  const listingBytes = await fetchBytes('/model/files.json');
  if (!listingBytes) return null;
  const listing = JSON.parse(decodeText(listingBytes)) as ServedListing;
  const { folder } = listing;
  if (!folder || !listing.files.includes(MODEL_FILES.descriptor)) return null;
  const files: ModelFiles = new Map();
  for (const name of Object.values(MODEL_FILES)) {
    if (name === MODEL_FILES.state || !listing.files.includes(name)) continue;
    files.set(name, await fetchRequired(`/model/${name}`));
  }
  return decodeModelFiles(`server folder ${folder}`, files);
}

/** Encodes a loaded model as the files of a model folder. */
export async function encodeModelFolder(
  loaded: LoadedModel,
): Promise<ModelFiles> {
  const { descriptor } = loaded;
  const files = encodeAtlas(loaded.atlas);
  files.set(MODEL_FILES.descriptor, encodeDescriptor(descriptor));
  const weights = await encodeWeights(loaded.model, descriptor.step);
  files.set(MODEL_FILES.weights, weights);
  return files;
}

/** Settings of the quick model: the tiny preset on a 32^3 grid. */
export const QUICK_PREPROCESSING: ModelPreprocessing = {
  size: 32,
  marginMm: 4,
  align: 'affine',
};

export interface QuickTrainingHooks {
  /** Progress text, such as "aligning scan 2 of 5". */
  status(text: string): void;
  step(result: StepResult, total: number): void;
  /** Polled between steps; true ends training early. */
  stopRequested(): boolean;
}

function decodeText(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

async function readEmbeddedScan(path: string) {
  return readNifti(await fetchRequired(`/data/${path}`), { name: path });
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/**
 * Trains a model in the tab on the embedded IXI scans (served under
 * /data/): the manifest's atlas and its first `scanCount` training scans,
 * the baseline variant (no teacher, so no SAM features to compute),
 * `steps` iterations of each stage. Returns it as a loaded model folder.
 */
export async function trainQuickModel(
  steps: number,
  scanCount: number,
  hooks: QuickTrainingHooks,
): Promise<PageModel> {
  const manifestUrl = '/data/manifest.json';
  const manifest = parseManifest(
    decodeText(await fetchRequired(manifestUrl)),
    manifestUrl,
  );
  let structures;
  if (manifest.structures) {
    const csv = await fetchRequired(`/data/${manifest.structures}`);
    structures = loadStructureTable(decodeText(csv));
  }
  hooks.status('preparing the atlas');
  const atlas = prepareModelAtlas(
    await readEmbeddedScan(manifest.atlas.image),
    await readEmbeddedScan(manifest.atlas.labels),
    QUICK_PREPROCESSING,
    structures,
  );
  const atlasImage = volumeTensor(atlas.image);
  const atlasLabels = volumeTensor(atlas.labels);
  const targets: Tensor[] = [];
  const variant = 'baseline';
  const model = new RrlMedSam({
    ...RRL_PRESETS.tiny,
    numClasses: atlas.labelEntries.length,
    ...variantModelOptions(variant),
    seed: 0,
  });
  try {
    const paths = manifest.train.slice(0, scanCount);
    for (const [i, path] of paths.entries()) {
      hooks.status(`aligning training scan ${i + 1} of ${paths.length}`);
      const scan = await readEmbeddedScan(path);
      const placed = await toAtlasSpace(scan, atlasImage, QUICK_PREPROCESSING);
      targets.push(placed.image);
    }
    const trainer = createTrainer(
      model,
      { atlas: { image: atlasImage, labels: atlasLabels }, scans: targets },
      {
        variant,
        stage1Iterations: steps,
        stage2Iterations: steps,
        seed: 0,
        augment: createAugmenter(),
      },
    );
    try {
      hooks.status('training');
      while (!trainer.done && !hooks.stopRequested()) {
        hooks.step(await trainer.step(), trainer.totalIterations);
      }
      return {
        source:
          `trained in this tab (${plural(trainer.iteration, 'iteration')} ` +
          `on ${plural(paths.length, 'scan')})`,
        model,
        atlas: {
          image: atlas.image,
          labels: atlas.labels,
          regions: atlas.regions,
        },
        descriptor: {
          format: MODEL_FORMAT,
          config: model.config,
          preprocess: QUICK_PREPROCESSING,
          labels: atlas.labelEntries,
          teacher: RANDOM_TEACHER,
          training: trainer.config,
          step: trainer.iteration,
          manifest: '/data/manifest.json (trained in the browser)',
        },
      };
    } finally {
      trainer.dispose();
    }
  } catch (error) {
    model.dispose();
    throw error;
  } finally {
    for (const t of [atlasImage, atlasLabels, ...targets]) t.dispose();
  }
}
