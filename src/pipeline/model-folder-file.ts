// Node-only model folder I/O: reads a folder's files into memory for
// decodeModelFolder, and writes checkpoints file by file, each atomically.
//
// Crash safety: every file goes through writeFileAtomic. A checkpoint
// writes train-state.safetensors first, then model.safetensors, then
// model.json. A run killed between two of them therefore leaves a train
// state at least as new as the rest, and `train --resume` continues from
// the train state alone.

import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CheckpointError } from '../io/checkpoint-error.js';
import { writeFileAtomic } from '../io/atomic-file.js';
import {
  decodeDescriptor,
  decodeModelFolder,
  decodeTrainerState,
  encodeDescriptor,
  encodeTrainerState,
  encodeWeights,
  MODEL_FILES,
  type LoadedModel,
  type ModelDescriptor,
  type ModelFiles,
} from './model-folder.js';
import type { RrlMedSam } from '../nn/rrl/model.js';
import type { TrainerState } from './train/trainer.js';

/** Reads every model-folder file present in `folder` into memory. */
export async function readModelFiles(folder: string): Promise<ModelFiles> {
  let names: string[];
  try {
    names = await readdir(folder);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CheckpointError(
      `${folder}: cannot read the model folder (${code ?? String(error)}); ` +
        'pass the --out folder of `rrl-medsam train` or `rrl-medsam demo`',
      { cause: error },
    );
  }
  const known = new Set<string>(Object.values(MODEL_FILES));
  const files: ModelFiles = new Map();
  for (const name of names) {
    if (!known.has(name) || name === MODEL_FILES.state) continue;
    files.set(name, new Uint8Array(await readFile(join(folder, name))));
  }
  return files;
}

/** Reads a model folder for inference: descriptor, weights and atlas. */
export async function loadModelFolder(folder: string): Promise<LoadedModel> {
  return decodeModelFolder(folder, await readModelFiles(folder));
}

/** Reads a file's bytes, or returns null when the file does not exist. */
async function readIfPresent(path: string): Promise<Uint8Array | null> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/** Reads model.json of `folder`, or returns null when there is none. */
export async function readDescriptor(folder: string): Promise<ModelDescriptor | null> {
  const path = join(folder, MODEL_FILES.descriptor);
  const bytes = await readIfPresent(path);
  return bytes && decodeDescriptor(path, bytes);
}

/** Reads train-state.safetensors of `folder`, or null when there is none. */
export async function readTrainerState(
  folder: string,
  descriptor: ModelDescriptor,
): Promise<TrainerState | null> {
  const path = join(folder, MODEL_FILES.state);
  const bytes = await readIfPresent(path);
  return bytes && decodeTrainerState(path, bytes, descriptor.config);
}

/** Writes files (the atlas, for example) into `folder`, each atomically. */
export async function writeModelFiles(folder: string, files: ModelFiles): Promise<void> {
  for (const [name, bytes] of files) await writeFileAtomic(join(folder, name), bytes);
}

/**
 * Writes a checkpoint: the trainer state, the weights and the descriptor
 * with `step` set to the state's iteration, in that order (see the file
 * comment). The state's tensors stay the caller's.
 */
export async function writeCheckpoint(
  folder: string,
  model: RrlMedSam,
  state: TrainerState,
  descriptor: ModelDescriptor,
): Promise<void> {
  const stateBytes = await encodeTrainerState(state, model.config);
  await writeFileAtomic(join(folder, MODEL_FILES.state), stateBytes);
  const weights = await encodeWeights(model, state.iteration);
  await writeFileAtomic(join(folder, MODEL_FILES.weights), weights);
  descriptor.step = state.iteration;
  await writeFileAtomic(join(folder, MODEL_FILES.descriptor), encodeDescriptor(descriptor));
}
