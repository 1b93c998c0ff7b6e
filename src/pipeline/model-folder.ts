// The model folder: everything `segment`, `register`, `evaluate` and the
// browser page need to use a trained model, and everything `train
// --resume` needs to continue it. This file encodes and decodes the files
// as bytes, so it runs in browsers too; model-folder-file.ts reads and
// writes them on disk (Node).
//
// Files:
// - model.json: the descriptor (format, model config, preprocessing,
//   label table, teacher, training settings, completed iterations).
// - model.safetensors: the weights, with the config and step in its
//   metadata, so a weights file alone names the model it belongs to.
// - train-state.safetensors: weights and both Adam states of the same
//   step, for --resume.
// - atlas.nii.gz, atlas-labels.nii.gz: the preprocessed atlas image and
//   its structure ids on the model's grid; atlas-regions.nii.gz: the
//   atlas's full parcellation on that grid (original codes), used to score
//   the registration over every region.

import { readSafetensorsWithMetadata, writeSafetensors } from '../io/safetensors.js';
import type { HostTensor } from '../io/host-tensor.js';
import { CheckpointError } from '../io/checkpoint-error.js';
import type { OptimizerStateDict } from '../optim/optimizer.js';
import { rrlConfig, type RrlModelConfig } from '../nn/rrl/config.js';
import { RrlMedSam } from '../nn/rrl/model.js';
import { tensor, type Tensor } from '../tensor.js';
import { crc32 } from './gzip.js';
import { readNifti } from './nifti.js';
import { writeNifti } from './nifti-write.js';
import type { AugmentOptions } from './augment.js';
import type { TrainerConfig, TrainerState } from './train/trainer.js';
import type { Volume } from './volume.js';

/** Format tag of model.json and of the safetensors metadata. */
export const MODEL_FORMAT = 'rrl-medsam-model/1';

/** File names inside a model folder. */
export const MODEL_FILES = Object.freeze({
  descriptor: 'model.json',
  weights: 'model.safetensors',
  state: 'train-state.safetensors',
  atlas: 'atlas.nii.gz',
  atlasLabels: 'atlas-labels.nii.gz',
  atlasRegions: 'atlas-regions.nii.gz',
});

/** Preprocessing settings that bring scans onto the model's grid. */
export interface ModelPreprocessing {
  /** Voxels per side of the cube grid. */
  size: number;
  /** Margin around the head's box in mm. */
  marginMm: number;
  /** Affine pre-alignment of every scan to the atlas ('affine' or 'none'). */
  align: 'affine' | 'none';
}

/** One output class: its id in the label maps and its name. */
export interface LabelEntry {
  id: number;
  name: string;
}

/** The contents of model.json. */
export interface ModelDescriptor {
  format: string;
  config: RrlModelConfig;
  preprocess: ModelPreprocessing;
  /** Class 0 (background) first, then one entry per structure id. */
  labels: LabelEntry[];
  /** Source of the distilled features (RANDOM_TEACHER or a SAM). */
  teacher: string;
  /**
   * Settings that made the teacher's features, so that a resumed run
   * makes the same ones: the SAM encoder config, its input size, the axial
   * slice step and the checkpoint path (absent for a random teacher).
   */
  teacherOptions?: {
    config: string;
    imageSize: number;
    sliceStep: number;
    checkpoint?: string;
  };
  /** The trainer settings of the run (see TrainerConfig). */
  training: TrainerConfig;
  /** The augmentation options of the run, or null when it ran without. */
  augmentation?: AugmentOptions | null;
  /** Iterations completed when the weights were written. */
  step: number;
  /** Manifest the model was trained from, as given on the command line. */
  manifest?: string;
}

/** A model folder's files by name, as bytes. */
export type ModelFiles = Map<string, Uint8Array>;

/** The atlas of a model, on the model's grid. */
export interface ModelAtlas {
  image: Volume;
  /** Structure ids 0..K. */
  labels: Volume;
  /** Full parcellation (original codes), when the folder has one. */
  regions?: Volume;
}

/** Returns the differences between two model configs, one line per key. */
export function configMismatches(
  expected: RrlModelConfig,
  found: RrlModelConfig,
): string[] {
  const keys = new Set([...Object.keys(expected), ...Object.keys(found)]);
  const lines: string[] = [];
  for (const key of [...keys].sort()) {
    const a = JSON.stringify((expected as unknown as Record<string, unknown>)[key]);
    const b = JSON.stringify((found as unknown as Record<string, unknown>)[key]);
    if (a !== b) lines.push(`${key}: ${b} in the checkpoint, ${a} expected`);
  }
  return lines;
}

/**
 * A checkpoint written for another model config; `mismatches` lists the
 * differing keys as configMismatches words them.
 */
export class ConfigMismatchError extends CheckpointError {
  override name = 'ConfigMismatchError';
  constructor(
    message: string,
    readonly mismatches: string[],
  ) {
    super(message);
  }
}

/** Throws naming every mismatched key when the two configs differ. */
export function checkConfigMatches(
  source: string,
  expected: RrlModelConfig,
  found: RrlModelConfig,
): void {
  const lines = configMismatches(expected, found);
  if (lines.length === 0) return;
  throw new ConfigMismatchError(
    `${source}: the checkpoint was written for another model config ` +
      `(${lines.join('; ')}). Use the model folder it came from, or train ` +
      'a new model for this config.',
    lines,
  );
}

/** Copies a device tensor to a float32 host tensor. */
async function hostTensor(t: Tensor): Promise<HostTensor> {
  return { dtype: 'float32', shape: [...t.shape], data: await t.toArray() };
}

function uploadAll(
  source: string,
  tensors: Map<string, HostTensor>,
  prefix: string,
): Map<string, Tensor> {
  const result = new Map<string, Tensor>();
  for (const [name, host] of tensors) {
    if (!name.startsWith(prefix)) continue;
    if (host.dtype !== 'float32') {
      throw new CheckpointError(
        `${source}: tensor ${name} is ${host.dtype}; model files hold float32`,
      );
    }
    const data = host.data as Float32Array;
    const bad = data.findIndex((value) => !Number.isFinite(value));
    if (bad >= 0) {
      throw new CheckpointError(
        `${source}: tensor ${name} has the invalid value ${data[bad]} at element ${bad} (a run that ` +
          'diverged or an edit wrote it); train a new model',
      );
    }
    result.set(name.slice(prefix.length), tensor(data, host.shape));
  }
  return result;
}

/**
 * Metadata key of the CRC-32 of a model file's data section, as 8 hex
 * digits. Reading checks it, so a damaged copy (a flipped bit in the
 * weights) is rejected instead of loaded. Files written before the key
 * existed have none and load unchecked; the header itself is checked by
 * its parser and by the config comparison.
 */
const DATA_CRC_KEY = 'data_crc32';

/** Returns the bytes after a safetensors file's length prefix and JSON header. */
function dataSection(bytes: Uint8Array): Uint8Array {
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  return bytes.subarray(8 + Number(headerLength));
}

function crcHex(bytes: Uint8Array): string {
  return crc32(bytes).toString(16).padStart(8, '0');
}

/** Encodes like writeSafetensors, with the CRC-32 of the data section in the metadata. */
function writeWithChecksum(host: Map<string, HostTensor>, metadata: Record<string, string>): Uint8Array {
  // The data section does not depend on the metadata, so the checksum of
  // a first encoding is valid for the second.
  const crc = crcHex(dataSection(writeSafetensors(host, metadata)));
  return writeSafetensors(host, { ...metadata, [DATA_CRC_KEY]: crc });
}

/** Encodes the weights of `model` as model.safetensors bytes. */
export async function encodeWeights(
  model: RrlMedSam,
  step: number,
): Promise<Uint8Array> {
  const state = model.stateDict();
  try {
    const host = new Map<string, HostTensor>();
    for (const [name, t] of state) host.set(name, await hostTensor(t));
    return writeWithChecksum(host, {
      format: MODEL_FORMAT,
      config: JSON.stringify(model.config),
      step: String(step),
    });
  } finally {
    for (const t of state.values()) t.dispose();
  }
}

/** Reads the format and config metadata of a model safetensors file. */
function readModelMetadata(
  source: string,
  metadata: Record<string, string> | null,
): { config: RrlModelConfig; step: number } {
  if (!metadata || metadata.format !== MODEL_FORMAT || !metadata.config) {
    throw new CheckpointError(
      `${source}: not an rrl-medsam model file (metadata format is ` +
        `${JSON.stringify(metadata?.format ?? null)}, expected ` +
        `"${MODEL_FORMAT}"); pass a file written by rrl-medsam train`,
    );
  }
  return { config: JSON.parse(metadata.config), step: Number(metadata.step) };
}

/** Parses safetensors bytes of a model folder; errors name the file. */
function readModelSafetensors(source: string, bytes: Uint8Array): ReturnType<typeof readSafetensorsWithMetadata> {
  let parsed: ReturnType<typeof readSafetensorsWithMetadata>;
  try {
    parsed = readSafetensorsWithMetadata(bytes);
  } catch (error) {
    throw new CheckpointError(
      `${source}: ${(error as Error).message}; the file is damaged or not a safetensors ` +
        'file, so copy the model folder again or train a new one',
      { cause: error },
    );
  }
  const recorded = parsed.metadata?.[DATA_CRC_KEY];
  if (recorded !== undefined) {
    const actual = crcHex(dataSection(bytes));
    if (actual !== recorded) {
      throw new CheckpointError(
        `${source}: the tensor data's CRC-32 is ${actual} but the file records ${recorded}, ` +
          'so the file is damaged; copy the model folder again or train a new one',
      );
    }
  }
  return parsed;
}

/**
 * Builds the model that model.safetensors bytes describe and loads its
 * weights. With `expected`, a file of another config is refused with the
 * mismatched keys named.
 */
export function decodeWeights(
  source: string,
  bytes: Uint8Array,
  expected?: RrlModelConfig,
): { model: RrlMedSam; step: number } {
  const { tensors, metadata } = readModelSafetensors(source, bytes);
  if (metadata?.trainer) {
    throw new CheckpointError(
      `${source}: this is a training state (${MODEL_FILES.state}: weights and optimiser ` +
        `state), not the weights file; copy ${MODEL_FILES.weights} of the model folder again`,
    );
  }
  const { config, step } = readModelMetadata(source, metadata);
  if (expected) checkConfigMatches(source, expected, config);
  const model = new RrlMedSam(rrlConfig(config));
  const state = uploadAll(source, tensors, '');
  try {
    model.loadStateDict(state);
  } catch (error) {
    model.dispose();
    throw new CheckpointError(`${source}: ${(error as Error).message}`, {
      cause: error,
    });
  } finally {
    for (const t of state.values()) t.dispose();
  }
  return { model, step };
}

interface StateMetadata {
  iteration: number;
  seed: number;
  variant: TrainerState['variant'];
  medical: Omit<OptimizerStateDict, 'tensors'>;
  general: Omit<OptimizerStateDict, 'tensors'>;
}

/** Encodes a trainer checkpoint as train-state.safetensors bytes. */
export async function encodeTrainerState(
  state: TrainerState,
  config: RrlModelConfig,
): Promise<Uint8Array> {
  const host = new Map<string, HostTensor>();
  const add = async (prefix: string, tensors: Map<string, Tensor>) => {
    for (const [name, t] of tensors) host.set(prefix + name, await hostTensor(t));
  };
  await add('model.', state.model);
  await add('medical.', state.medicalOptimizer.tensors);
  await add('general.', state.generalOptimizer.tensors);
  const meta: StateMetadata = {
    iteration: state.iteration,
    seed: state.seed,
    variant: state.variant,
    medical: {
      options: state.medicalOptimizer.options,
      steps: state.medicalOptimizer.steps,
    },
    general: {
      options: state.generalOptimizer.options,
      steps: state.generalOptimizer.steps,
    },
  };
  return writeWithChecksum(host, {
    format: MODEL_FORMAT,
    config: JSON.stringify(config),
    trainer: JSON.stringify(meta),
  });
}

/**
 * Decodes train-state.safetensors bytes into a TrainerState on the
 * device (the caller passes it to Trainer.loadState and then to
 * disposeTrainerState). A state of another model config is refused.
 */
export function decodeTrainerState(
  source: string,
  bytes: Uint8Array,
  expected: RrlModelConfig,
): TrainerState {
  const { tensors, metadata } = readModelSafetensors(source, bytes);
  const { config } = readModelMetadata(source, metadata);
  checkConfigMatches(source, expected, config);
  if (!metadata?.trainer) {
    throw new CheckpointError(`${source}: the file has no trainer state`);
  }
  const meta = JSON.parse(metadata.trainer) as StateMetadata;
  return {
    iteration: meta.iteration,
    seed: meta.seed,
    variant: meta.variant,
    model: uploadAll(source, tensors, 'model.'),
    medicalOptimizer: {
      ...meta.medical,
      tensors: uploadAll(source, tensors, 'medical.'),
    },
    generalOptimizer: {
      ...meta.general,
      tensors: uploadAll(source, tensors, 'general.'),
    },
  };
}

/** Encodes a descriptor as model.json text bytes. */
export function encodeDescriptor(descriptor: ModelDescriptor): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(descriptor, null, 2) + '\n');
}

/** Throws an error naming each out-of-range entry of model.json's "preprocess" field. */
function checkPreprocessing(source: string, preprocess: ModelPreprocessing): void {
  const { size, marginMm, align } = preprocess;
  const problems: string[] = [];
  if (!Number.isInteger(size) || size < 2) problems.push(`size ${JSON.stringify(size)} is not an integer of at least 2`);
  if (typeof marginMm !== 'number' || !(marginMm >= 0)) {
    problems.push(`marginMm ${JSON.stringify(marginMm)} is not a number of at least 0`);
  }
  if (align !== 'affine' && align !== 'none') problems.push(`align ${JSON.stringify(align)} is not "affine" or "none"`);
  if (problems.length > 0) {
    throw new CheckpointError(
      `${source}: "preprocess" is invalid (${problems.join('; ')}); the file was edited or ` +
        'damaged, so copy the model folder again or train a new one',
    );
  }
}

/** Parses and checks model.json bytes. */
export function decodeDescriptor(source: string, bytes: Uint8Array): ModelDescriptor {
  let value: ModelDescriptor;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new CheckpointError(
      `${source}: not valid JSON: ${(error as Error).message}; the file is cut short or was ` +
        'edited, so copy the model folder again or train a new one',
    );
  }
  if (value?.format !== MODEL_FORMAT) {
    throw new CheckpointError(
      `${source}: format is ${JSON.stringify(value?.format ?? null)}, ` +
        `expected "${MODEL_FORMAT}"; is this a model folder written by ` +
        'rrl-medsam train?',
    );
  }
  const fields = value as unknown as Record<string, unknown>;
  const missing = ['config', 'preprocess', 'labels', 'training'].filter(
    (key) => fields[key] === null || typeof fields[key] !== 'object',
  );
  if (missing.length > 0) {
    throw new CheckpointError(`${source}: missing fields ${missing.join(', ')}`);
  }
  checkPreprocessing(source, value.preprocess);
  const ids = value.labels.map((entry) => entry.id);
  const repeated = ids.find((id, index) => ids.indexOf(id) !== index);
  if (repeated !== undefined) {
    throw new CheckpointError(
      `${source}: label id ${repeated} appears twice in "labels"; each class needs its own id`,
    );
  }
  if (value.labels.length !== value.config.numClasses) {
    throw new CheckpointError(
      `${source}: ${value.labels.length} labels but the model has ` +
        `${value.config.numClasses} classes`,
    );
  }
  return value;
}

/** Encodes the atlas volumes as NIfTI files of a model folder. */
export function encodeAtlas(atlas: ModelAtlas): ModelFiles {
  const files: ModelFiles = new Map();
  files.set(MODEL_FILES.atlas, writeNifti(atlas.image, { gzip: true }));
  files.set(
    MODEL_FILES.atlasLabels,
    writeNifti(atlas.labels, { gzip: true, labels: true }),
  );
  if (atlas.regions) {
    files.set(
      MODEL_FILES.atlasRegions,
      writeNifti(atlas.regions, { gzip: true, labels: true }),
    );
  }
  return files;
}

/** A model folder decoded for inference. */
export interface LoadedModel {
  descriptor: ModelDescriptor;
  model: RrlMedSam;
  atlas: ModelAtlas;
}

function requireFile(files: ModelFiles, name: string, folder: string): Uint8Array {
  const bytes = files.get(name);
  if (!bytes) {
    throw new CheckpointError(
      `${folder}: the model folder has no ${name}; a folder written by ` +
        '`rrl-medsam train` or `rrl-medsam demo` holds model.json, ' +
        'model.safetensors and the atlas files',
    );
  }
  return bytes;
}

/**
 * Decodes a model folder's files: the descriptor, the model with its
 * weights (checked against the descriptor's config) and the atlas.
 */
export function decodeModelFolder(folder: string, files: ModelFiles): LoadedModel {
  const descriptor = decodeDescriptor(
    `${folder}/${MODEL_FILES.descriptor}`,
    requireFile(files, MODEL_FILES.descriptor, folder),
  );
  // The weights first: a model.json of another config is then reported
  // by the keys that differ, not by the atlas grid it implies.
  const { model } = decodeWeights(
    `${folder}/${MODEL_FILES.weights}`,
    requireFile(files, MODEL_FILES.weights, folder),
    descriptor.config,
  );
  try {
    const read = (name: string) =>
      readNifti(requireFile(files, name, folder), { name: `${folder}/${name}` });
    const atlas: ModelAtlas = {
      image: read(MODEL_FILES.atlas),
      labels: read(MODEL_FILES.atlasLabels),
    };
    if (files.has(MODEL_FILES.atlasRegions)) atlas.regions = read(MODEL_FILES.atlasRegions);
    const size = descriptor.preprocess.size;
    for (const [name, volume] of Object.entries(atlas)) {
      if (!volume.dims.slice(0, 3).every((n: number) => n === size)) {
        throw new CheckpointError(
          `${folder}: atlas ${name} is ${volume.dims.join('x')} but ${MODEL_FILES.descriptor} ` +
            `gives the grid as ${size}^3, so the files come from different model folders; ` +
            'copy the whole folder of one model again',
        );
      }
    }
    const classes = descriptor.config.numClasses;
    const badLabel = atlas.labels.data.find((value) => !(Number.isInteger(value) && value >= 0 && value < classes));
    if (badLabel !== undefined) {
      throw new CheckpointError(
        `${folder}/${MODEL_FILES.atlasLabels}: contains the value ${badLabel}, but the model's ` +
          `class ids run from 0 to ${classes - 1}; copy the model folder again or train a new one`,
      );
    }
    if (!atlas.image.data.some((value) => value > 0)) {
      throw new CheckpointError(
        `${folder}/${MODEL_FILES.atlas}: no voxel is above 0, so the atlas image is blank; ` +
          'copy the model folder again or train a new one',
      );
    }
    return { descriptor, model, atlas };
  } catch (error) {
    model.dispose();
    throw error;
  }
}
