// `rrl-medsam train`: builds the training set from a manifest (atlas and
// unlabelled scans on the atlas grid), extracts the SAM teacher's
// features, trains both stages and keeps the model folder up to date.
// `demo` calls runTraining too.

import { readdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { noGrad } from '../autograd/node.js';
import { ready } from '../device.js';
import { indexSelect } from '../ops/index-select.js';
import { CheckpointError } from '../io/checkpoint-error.js';
import { writeFileAtomic } from '../io/atomic-file.js';
import { RRL_PRESETS, type RrlPresetName } from '../nn/rrl/config.js';
import { RrlMedSam } from '../nn/rrl/model.js';
import { readSamCheckpoint } from '../nn/sam/key-map.js';
import type { SamConfigName } from '../nn/sam/config.js';
import { augment, type AugmentOptions } from '../pipeline/augment.js';
import {
  prepareModelAtlas,
  toAtlasSpace,
  volumeTensor,
  type PreparedModelAtlas,
} from '../pipeline/experiment.js';
import { loadManifest, type LoadedManifest } from '../pipeline/manifest-file.js';
import {
  MODEL_FILES,
  MODEL_FORMAT,
  encodeAtlas,
  type ModelDescriptor,
  type ModelPreprocessing,
} from '../pipeline/model-folder.js';
import {
  readDescriptor,
  readTrainerState,
  writeCheckpoint,
  writeModelFiles,
} from '../pipeline/model-folder-file.js';
import { readNiftiFile } from '../pipeline/nifti-file.js';
import { checkOutputFolder, readScan } from './infer.js';
import { writePngFile } from '../pipeline/preview-file.js';
import {
  checkpointIdentity,
  type SamCheckpoint,
  createSamTeacher,
  extractTeacherFeatures,
  RANDOM_TEACHER,
} from '../pipeline/teacher.js';
import { DiskFeatureCache } from '../pipeline/teacher-cache.js';
import {
  createTrainer,
  disposeTrainerState,
  variantModelOptions,
  variantSwitches,
  type Augment,
  type StepResult,
  type Trainer,
  type TrainingVariant,
} from '../pipeline/train/index.js';
import { keep, type Tensor } from '../tensor.js';
import { UsageError } from './args.js';
import { lossCurvePng, type LossHistory } from '../pipeline/loss-curve.js';
import { Progress, formatLosses } from './progress.js';

/** Everything a training run needs, as the flags give it. */
export interface TrainSettings {
  manifest: string;
  out: string;
  stage: '1' | '2' | 'both';
  /** Iterations per stage. */
  steps: number;
  size: number;
  preset: RrlPresetName;
  variant: TrainingVariant;
  seed: number;
  lr: number;
  alpha: number;
  /**
   * l1-l3, the weights of the smoothness, NCC and Dice terms of L_reg, and
   * the weight of the cross-entropy added to both segmentation losses.
   */
  weights: {
    smoothness: number;
    similarity: number;
    registrationDice: number;
    segmentationCrossEntropy: number;
  };
  /** Edge in voxels of the local NCC window of L_sim (odd). */
  nccWindow: number;
  /** Path of an official SAM checkpoint, or undefined for a random teacher. */
  sam?: string;
  /** SAM encoder config of the random teacher. */
  samConfig: SamConfigName;
  /** Side in pixels of the slices fed to the teacher. */
  teacherSize: number;
  checkpointEvery: number;
  logEvery: number;
  resume: boolean;
  /** Augment atlas and target with TRAINING_AUGMENTATION. */
  augment: boolean;
  /** Folder of the teacher feature cache. */
  cache: string;
  /** Names of the flags given on the command line (the rest defaulted). */
  given: ReadonlySet<string>;
}

/** Default folder of the teacher feature cache. */
export function defaultCacheFolder(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'rrl-medsam', 'teacher');
}

const LOSS_COLUMNS: [string, string][] = [
  ['total', 'loss'],
  ['similarity', 'ncc'],
  ['smoothness', 'smooth'],
  ['registrationDice', 'regdice'],
  ['medicalSegmentation', 'seg_m'],
  ['generalSegmentation', 'seg_g'],
  ['distillation', 'rec'],
];

/**
 * The augmentation of `train`: rotation up to 10 degrees, scaling by 0.9
 * to 1.1 and a smooth elastic field of 1 voxel per control point. The
 * atlas and the target of an iteration get the same transform (see
 * pairedAugmenter). Mirroring is off, because the structure tables name
 * left and right structures.
 */
export const TRAINING_AUGMENTATION: AugmentOptions = Object.freeze({
  mirrorAxes: [],
  rotationDeg: 10,
  scaleRange: [0.9, 1.1] as const,
  elasticMagnitude: 1,
});

/**
 * Returns an augmentation hook that moves the atlas and the target of an
 * iteration by the same random transform, drawn from (seed, iteration).
 * The pair then keeps the relative alignment it has after the affine
 * pre-alignment, and only its position in the grid varies. Measured on
 * the IXI scans at 48^3 with 30 + 30 iterations, independent transforms
 * for the two images left the registration Dice at 0.419 against 0.496
 * without augmentation (affine alone: 0.493).
 */
export function pairedAugmenter(options: AugmentOptions, seed: number): Augment {
  return (image, labels, iteration) => {
    const moved = augment(image, labels, { ...options, seed, step: iteration });
    moved.flow.dispose();
    return { image: moved.image, labels: moved.labels };
  };
}

/** Error of a run that Ctrl-C stopped after its checkpoint was written, so the CLI exits with 130. */
export class StoppedError extends Error {
  override name = 'StoppedError';
}

/** Results of a training run, for demo and the caller's summary. */
export interface TrainOutcome {
  folder: string;
  descriptor: ModelDescriptor;
  /** Seconds per iteration of each stage in this run (NaN if none ran). */
  secondsPerIteration: { stage1: number; stage2: number };
  lossCurve: string;
}

function stageIterations(settings: TrainSettings): [number, number] {
  const { stage, steps } = settings;
  return [stage === '2' ? 0 : steps, stage === '1' ? 0 : steps];
}

/** Builds the descriptor that a new run writes before any step. */
function newDescriptor(
  settings: TrainSettings,
  model: RrlMedSam,
  trainer: Trainer,
  atlas: PreparedModelAtlas,
  teacher: string,
  preprocessing: ModelPreprocessing,
): ModelDescriptor {
  return {
    format: MODEL_FORMAT,
    config: model.config,
    preprocess: preprocessing,
    labels: atlas.labelEntries,
    teacher,
    teacherOptions: {
      config: settings.samConfig,
      imageSize: settings.teacherSize,
      sliceStep: TEACHER_SLICE_STEP,
      ...(settings.sam && { checkpoint: resolve(settings.sam) }),
    },
    training: trainer.config,
    augmentation: settings.augment ? TRAINING_AUGMENTATION : null,
    step: 0,
    manifest: settings.manifest,
  };
}

/**
 * Checks that a resumed run requests the settings the folder was trained with:
 * every flag given now must agree with the stored setting. Returns the
 * stored settings merged under the given ones.
 */
function resumeSettings(
  settings: TrainSettings,
  stored: ModelDescriptor,
): TrainSettings {
  // Folders written before the cross-entropy term existed trained without it.
  const storedCrossEntropy = stored.training.weights.segmentationCrossEntropy ?? 0;
  const storedValues: Partial<Record<string, unknown>> = {
    size: stored.preprocess.size,
    preset: stored.config.name,
    variant: stored.training.variant,
    seed: stored.training.seed,
    lr: stored.training.lr,
    alpha: stored.training.alpha,
    'weight-smoothness': stored.training.weights.smoothness,
    'weight-similarity': stored.training.weights.similarity,
    'weight-dice': stored.training.weights.registrationDice,
    'weight-ce': storedCrossEntropy,
    // Folders written before the window was a flag trained with 9.
    'ncc-window': stored.training.nccWindow ?? 9,
    'sam-config': stored.teacherOptions?.config,
    'teacher-size': stored.teacherOptions?.imageSize,
  };
  const flagValues: Record<string, unknown> = {
    ...settings,
    'sam-config': settings.samConfig,
    'teacher-size': settings.teacherSize,
    'weight-smoothness': settings.weights.smoothness,
    'weight-similarity': settings.weights.similarity,
    'weight-dice': settings.weights.registrationDice,
    'weight-ce': settings.weights.segmentationCrossEntropy,
    'ncc-window': settings.nccWindow,
  };
  const mismatched = Object.entries(storedValues)
    .filter(([name, value]) => settings.given.has(name) && value !== undefined && flagValues[name] !== value)
    .map(([name, value]) => `--${name} ${flagValues[name]} (the folder has ${value})`);
  if (mismatched.length > 0) {
    throw new CheckpointError(
      `train --resume: ${settings.out} was trained with other settings: ` +
        `${mismatched.join(', ')}. Drop these flags to continue it, or ` +
        'train into a new --out folder.',
    );
  }
  return {
    ...settings,
    size: stored.preprocess.size,
    preset: stored.config.name as RrlPresetName,
    variant: stored.training.variant,
    seed: stored.training.seed,
    lr: stored.training.lr,
    alpha: stored.training.alpha,
    weights: {
      smoothness: stored.training.weights.smoothness,
      similarity: stored.training.weights.similarity,
      registrationDice: stored.training.weights.registrationDice,
      segmentationCrossEntropy: storedCrossEntropy,
    },
    nccWindow: stored.training.nccWindow ?? 9,
    samConfig: (stored.teacherOptions?.config ?? settings.samConfig) as SamConfigName,
    teacherSize: stored.teacherOptions?.imageSize ?? settings.teacherSize,
    sam: stored.teacherOptions?.checkpoint ?? settings.sam,
    augment: stored.augmentation === undefined ? settings.augment : stored.augmentation !== null,
  };
}

/** Reads the atlas and the training scans and brings them to the atlas grid. */
async function prepareData(
  loaded: LoadedManifest,
  preprocessing: ModelPreprocessing,
  say: (line: string) => void,
): Promise<{ atlas: PreparedModelAtlas; targets: Tensor[]; names: string[] }> {
  const { manifest } = loaded;
  const atlasImage = await readScan(loaded.resolve(manifest.atlas.image), 'train: atlas image');
  const atlasLabels = await readNiftiFile(loaded.resolve(manifest.atlas.labels));
  const atlas = prepareModelAtlas(atlasImage, atlasLabels, preprocessing, loaded.structures);
  say(
    `atlas: ${manifest.atlas.image} on a ${preprocessing.size}^3 grid at ` +
      `${atlas.image.spacingMm.toFixed(2)} mm, ${atlas.labelEntries.length - 1} structures`,
  );
  const atlasTensor = volumeTensor(atlas.image);
  const targets: Tensor[] = [];
  try {
    for (const [i, path] of manifest.train.entries()) {
      const started = performance.now();
      const scan = await readScan(loaded.resolve(path), `train: training scan ${i + 1}`);
      const placed = await toAtlasSpace(scan, atlasTensor, preprocessing);
      targets.push(placed.image);
      const loss = placed.lossHistory.at(-1);
      say(
        `align ${i + 1}/${manifest.train.length}: ${path}` +
          (loss === undefined ? '' : ` (final NCC loss ${loss.toFixed(4)})`) +
          `, ${((performance.now() - started) / 1000).toFixed(1)} s`,
      );
    }
  } catch (error) {
    targets.forEach((t) => t.dispose());
    throw error;
  } finally {
    atlasTensor.dispose();
  }
  return { atlas, targets, names: [...manifest.train] };
}

/**
 * The teacher encodes every TEACHER_SLICE_STEP-th axial slice. The
 * distillation loss compares the teacher's features with the student's bottleneck,
 * which has one voxel per 16 slices, after resampling the teacher's
 * feature volume to it; four slices per bottleneck voxel (every 4th
 * slice) give that resampling enough samples at a quarter of the
 * encoder's cost.
 */
export const TEACHER_SLICE_STEP = 4;

/** Selects the target's slices that the teacher encodes, [1, 1, D', H, W]. */
function teacherSlices(target: Tensor): Tensor {
  const depth = target.shape[2];
  const step = TEACHER_SLICE_STEP;
  const indices = Array.from({ length: Math.ceil(depth / step) }, (_, i) => i * step);
  return noGrad(() => indexSelect(target, 2, indices));
}

/** Reads and parses the SAM checkpoint that `--sam` names; returns undefined without `--sam`. */
async function readSamFile(settings: TrainSettings): Promise<SamCheckpoint | undefined> {
  if (!settings.sam) return undefined;
  const path = resolve(settings.sam);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (error) {
    throw new Error(`train: --sam ${path}: cannot read the file (${String(error)})`);
  }
  let tensors: ReturnType<typeof readSamCheckpoint>;
  try {
    tensors = readSamCheckpoint(bytes);
  } catch (error) {
    throw new Error(
      `train: --sam ${path}: ${(error as Error).message}; expected the official SAM ` +
        'checkpoint (sam_vit_b_01ec64.pth) or its weights as safetensors',
      { cause: error },
    );
  }
  return { tensors, identity: await checkpointIdentity(bytes) };
}

/** Computes (or reads from the cache) the teacher's features per target. */
async function teacherFeatures(
  settings: TrainSettings,
  checkpoint: SamCheckpoint | undefined,
  targets: Tensor[],
  say: (line: string) => void,
): Promise<{ teacher: string; features: Tensor[] }> {
  const teacher = createSamTeacher({
    checkpoint,
    config: checkpoint ? undefined : settings.samConfig,
    imageSize: settings.teacherSize,
  });
  const cache = new DiskFeatureCache(settings.cache);
  const features: Tensor[] = [];
  try {
    for (const [i, target] of targets.entries()) {
      const started = performance.now();
      const progress = new Progress({
        label: `teacher ${i + 1}/${targets.length}`,
        total: Math.ceil(target.shape[2] / TEACHER_SLICE_STEP),
        every: 0,
      });
      const slices = teacherSlices(target);
      const result = await extractTeacherFeatures(teacher, slices, {
        cache,
        onProgress: (done) => progress.update(done, 'slices'),
      });
      slices.dispose();
      progress.done();
      features.push(keep(result.features));
      say(
        `teacher ${i + 1}/${targets.length}: [${result.features.shape.join(', ')}] ` +
          (result.fromCache ? 'from the cache' : `in ${((performance.now() - started) / 1000).toFixed(1)} s`),
      );
    }
  } finally {
    teacher.dispose();
  }
  return { teacher: teacher.info.teacher, features };
}

/** Reads the loss history of a resumed run (losses.json), or starts one. */
async function readHistory(folder: string, upTo: number): Promise<LossHistory> {
  try {
    const history = JSON.parse(await readFile(join(folder, 'losses.json'), 'utf8')) as LossHistory;
    // Steps after the checkpoint are run again, so their entries go.
    return history.filter((entry) => entry.iteration <= upTo);
  } catch {
    return [];
  }
}

/**
 * Largest --size accepted, so that a typo such as 4096 is a usage error
 * and not a failed allocation. Large grids also need an adapter whose
 * storage bindings hold the class scores (K + 1 float32 channels of
 * size^3 values).
 */
const MAX_GRID_SIZE = 256;

/**
 * Throws a UsageError unless `size` is a grid the encoder can halve four
 * times: a multiple of 16, at least 32 and at most MAX_GRID_SIZE.
 */
export function checkGridSize(verb: string, size: number): void {
  if (size % 16 === 0 && size >= 32 && size <= MAX_GRID_SIZE) return;
  const suggestion = Math.min(MAX_GRID_SIZE, Math.max(32, Math.round(size / 16) * 16));
  throw new UsageError(
    `${verb}: --size ${size} must be a multiple of 16 from 32 to ${MAX_GRID_SIZE} ` +
      `(the encoder halves the grid four times); try ${suggestion}`,
    verb,
  );
}

/** Names of the files that train writes into its --out folder. */
const TRAIN_OUTPUTS: readonly string[] = [...Object.values(MODEL_FILES), 'losses.json', 'loss-curve.png'];

/**
 * Throws a UsageError when training into `out` would overwrite a file that
 * train did not write. That is a file the manifest reads (the manifest
 * included) at the path of one of train's outputs, or, in a folder
 * without a model yet, any file with the name of one of them.
 */
async function checkOutputSparesInputs(out: string, loaded: LoadedManifest, isModelFolder: boolean): Promise<void> {
  const { manifest } = loaded;
  const inputs = [
    loaded.path,
    manifest.atlas.image,
    manifest.atlas.labels,
    ...manifest.train,
    ...manifest.test.flatMap((scan) => [scan.image, scan.labels]),
    ...(manifest.structures ? [manifest.structures] : []),
  ].map((path) => loaded.resolve(path));
  const outputs = new Set(TRAIN_OUTPUTS.map((name) => join(out, name)));
  const overwritten = inputs.find((path) => outputs.has(path));
  if (overwritten !== undefined) {
    throw new UsageError(
      `train: --out ${out} contains ${overwritten}, which the manifest reads and train would ` +
        'overwrite with its own file of that name; choose an --out folder apart from the data',
      'train',
    );
  }
  if (isModelFolder) return;
  const present = new Set(await readdir(out).catch(() => [] as string[]));
  const clashing = TRAIN_OUTPUTS.filter((name) => present.has(name));
  if (clashing.length > 0) {
    throw new UsageError(
      `train: --out ${out} contains no model but contains ${clashing.join(', ')}, which train would ` +
        'overwrite; choose a new or empty --out folder, or move those files',
      'train',
    );
  }
}

/**
 * Trains into settings.out and returns what it wrote. The atlas files are
 * written first, then a checkpoint every checkpointEvery steps and at the
 * end. The first Ctrl-C stops after the running step, with a checkpoint.
 */
export async function runTraining(
  input: TrainSettings,
  say: (line: string) => void = (line) => process.stderr.write(line + '\n'),
): Promise<TrainOutcome> {
  checkGridSize('train', input.size);
  if (input.teacherSize % 16 !== 0) {
    const suggestion = Math.max(16, Math.round(input.teacherSize / 16) * 16);
    throw new UsageError(
      `train: --teacher-size ${input.teacherSize} must be a multiple of 16 ` +
        `(the SAM encoder's patch size); try ${suggestion}`,
      'train',
    );
  }
  if (input.nccWindow % 2 !== 1) {
    const suggestion = input.nccWindow < input.size ? input.nccWindow + 1 : input.nccWindow - 1;
    throw new UsageError(
      `train: --ncc-window ${input.nccWindow} must be odd (the window is centred ` +
        `on its voxel); try ${suggestion}`,
      'train',
    );
  }
  if (input.nccWindow > input.size) {
    throw new UsageError(
      `train: --ncc-window ${input.nccWindow} is larger than the --size ${input.size} ` +
        `grid; use an odd window of at most ${input.size - 1}`,
      'train',
    );
  }
  await checkOutputFolder('train', 'out', input.out);
  const info = await ready();
  say(`device: ${info.adapter}`);
  const out = resolve(input.out);
  const found = await readDescriptor(out);
  // A run stopped before its first iteration finished has nothing to
  // keep, so running it again starts over instead of asking for --resume.
  const startsOver = found !== null && found.step === 0 && !input.resume;
  if (startsOver) say(`note: ${out} holds a model at step 0 (no iteration finished), so training starts over there`);
  const stored = startsOver ? null : found;
  // The demo sets resume without the flag, so a new demo folder starts training.
  if (!stored && input.resume && input.given.has('resume')) {
    throw new CheckpointError(
      `train --resume: ${out} contains no checkpoint (no ${MODEL_FILES.descriptor}), ` +
        'so there is nothing to resume; run without --resume to start training there',
    );
  }
  if (stored && !input.resume) {
    throw new CheckpointError(
      `train: ${out} already holds a model (step ${stored.step}); pass ` +
        '--resume to continue it, or choose another --out folder',
    );
  }
  const settings = stored ? resumeSettings(input, stored) : input;
  const [stage1Iterations, stage2Iterations] = stageIterations(settings);
  const continuing = stored?.training;
  const iterations = {
    // A resumed run keeps its stage 1; `--stage 2` on a stage-1 folder
    // continues into stage 2 from there.
    stage1Iterations: continuing && settings.stage === '2' ? continuing.stage1Iterations : stage1Iterations,
    stage2Iterations: continuing && settings.stage === '1' ? continuing.stage2Iterations : stage2Iterations,
  };
  if (continuing && settings.stage === 'both' && !settings.given.has('steps')) {
    iterations.stage1Iterations = continuing.stage1Iterations;
    iterations.stage2Iterations = continuing.stage2Iterations;
  }
  // Once stage 2 has begun, a new stage-1 length would relabel iterations
  // that already ran as stage 2.
  if (stored && continuing && stored.step > continuing.stage1Iterations &&
      iterations.stage1Iterations !== continuing.stage1Iterations) {
    throw new CheckpointError(
      `train --resume: ${out} finished its ${continuing.stage1Iterations} stage-1 iterations ` +
        `and is at iteration ${stored.step}, so --steps ${settings.steps} cannot change stage 1; ` +
        'pass --stage 2 --steps N to run stage 2 to N iterations',
    );
  }
  const variantOptions = variantModelOptions(settings.variant);
  const distils = variantSwitches(settings.variant).distill && iterations.stage1Iterations > 0;
  // Read before the preprocessing, so that a wrong --sam path fails at once.
  const samCheckpoint = distils ? await readSamFile(settings) : undefined;
  const loaded = await loadManifest(settings.manifest);
  await checkOutputSparesInputs(out, loaded, found !== null);
  for (const warning of loaded.report?.warnings ?? []) say(`warning: manifest ${loaded.path}: ${warning}`);
  if (loaded.manifest.train.length === 0) {
    throw new Error(
      `train: the manifest ${loaded.path} lists no training scans (its "train" array ` +
        'is empty); add the unlabelled scans to train on',
    );
  }
  if (!loaded.structures) {
    say('note: the manifest names no structure table, so every label code is its own class');
  }
  const preprocessing: ModelPreprocessing = stored?.preprocess ?? {
    size: settings.size,
    marginMm: 4,
    align: 'affine',
  };
  const { atlas, targets } = await prepareData(loaded, preprocessing, say);
  let teacherName = stored?.teacher ?? (settings.sam ? 'SAM' : RANDOM_TEACHER);
  let features: Tensor[] = [];
  const atlasImage = volumeTensor(atlas.image);
  const atlasLabels = volumeTensor(atlas.labels);
  const disposeData = () => {
    for (const t of [atlasImage, atlasLabels, ...targets, ...features]) t.dispose();
  };
  try {
    if (distils) {
      const extracted = await teacherFeatures(settings, samCheckpoint, targets, say);
      features = extracted.features;
      teacherName = extracted.teacher;
    }
    say(`teacher: ${teacherName}`);
    // A resumed run rebuilds exactly the stored config; a new one takes the
    // preset, the atlas's class count and the teacher's channel count.
    const model = new RrlMedSam(
      stored?.config ?? {
        ...RRL_PRESETS[settings.preset],
        numClasses: atlas.labelEntries.length,
        ...variantOptions,
        teacherChannels: features[0]?.shape[0] ?? RRL_PRESETS[settings.preset].teacherChannels,
        seed: settings.seed,
      },
    );
    if (model.config.numClasses !== atlas.labelEntries.length) {
      throw new CheckpointError(
        `train --resume: the model in ${out} has ${model.config.numClasses} classes but ` +
          `the manifest's atlas gives ${atlas.labelEntries.length}; resume with the manifest ` +
          'it was trained on',
      );
    }
    say(model.summary().table);
    const trainer = createTrainer(
      model,
      {
        atlas: { image: atlasImage, labels: atlasLabels },
        scans: targets,
        teacher: distils ? (index) => features[index] : undefined,
      },
      {
        ...iterations,
        variant: settings.variant,
        seed: settings.seed,
        lr: settings.lr,
        alpha: settings.alpha,
        weights: settings.weights,
        nccWindow: settings.nccWindow,
        augment: settings.augment ? pairedAugmenter(TRAINING_AUGMENTATION, settings.seed) : undefined,
      },
    );
    try {
      return await trainLoop(settings, out, model, trainer, atlas, teacherName, preprocessing, stored, say);
    } finally {
      trainer.dispose();
      model.dispose();
    }
  } finally {
    disposeData();
  }
}

/**
 * Throws when a step's losses are NaN or infinite, before the next
 * checkpoint, so the folder keeps the weights of iteration `savedIteration`.
 */
function throwIfDiverged(result: StepResult, settings: TrainSettings, savedIteration: number): void {
  const losses = Object.entries(result.losses ?? {}).filter(([, value]) => !Number.isFinite(value));
  if (losses.length === 0) return;
  const values = losses.map(([name, value]) => `${name} ${value}`).join(', ');
  throw new Error(
    `train: training diverged at iteration ${result.iteration} (stage ${result.stage}): ${values}. ` +
      `The model folder keeps its checkpoint of iteration ${savedIteration}; lower --lr ` +
      `(now ${settings.lr}) or the loss weights and train again`,
  );
}

async function trainLoop(
  settings: TrainSettings,
  out: string,
  model: RrlMedSam,
  trainer: Trainer,
  atlas: PreparedModelAtlas,
  teacherName: string,
  preprocessing: ModelPreprocessing,
  stored: ModelDescriptor | null,
  say: (line: string) => void,
): Promise<TrainOutcome> {
  const descriptor = newDescriptor(settings, model, trainer, atlas, teacherName, preprocessing);
  if (stored) {
    const state = await readTrainerState(out, stored);
    if (!state) {
      throw new CheckpointError(
        `train --resume: ${join(out, MODEL_FILES.state)} is missing, so the run cannot ` +
          `continue from step ${stored.step}; restore that file, or train into a new --out folder`,
      );
    }
    try {
      trainer.loadState(state);
    } finally {
      disposeTrainerState(state);
    }
    say(`resumed ${out} at iteration ${trainer.iteration} of ${trainer.totalIterations}`);
  } else {
    await writeModelFiles(out, encodeAtlas(atlas));
  }
  const history = await readHistory(out, trainer.iteration);
  // The iteration of the newest checkpoint on disk.
  let savedIteration = trainer.iteration;
  const checkpoint = async () => {
    savedIteration = trainer.iteration;
    const state = trainer.state();
    try {
      await writeCheckpoint(out, model, state, descriptor);
    } finally {
      disposeTrainerState(state);
    }
    await writeFileAtomic(join(out, 'losses.json'), JSON.stringify(history));
  };
  if (!stored) await checkpoint();

  // Time of the first Ctrl-C, or null while none arrived.
  let stopRequestedAt: number | null = null;
  const onSignal = () => {
    // Under `npm run`, one Ctrl-C arrives twice: from the terminal and
    // relayed by npm. Only a second press a second later quits at once.
    if (stopRequestedAt !== null) {
      if (Date.now() - stopRequestedAt > 1000) process.exit(130);
      return;
    }
    stopRequestedAt = Date.now();
    say('\nstopping after this step (Ctrl-C again to quit at once); a checkpoint follows');
  };
  process.on('SIGINT', onSignal);
  const seconds = { 1: [] as number[], 2: [] as number[] };
  const progress = new Progress({ label: 'train', total: trainer.totalIterations, every: settings.logEvery });
  try {
    while (!trainer.done && stopRequestedAt === null) {
      const result: StepResult = await trainer.step();
      throwIfDiverged(result, settings, savedIteration);
      seconds[result.stage].push(result.seconds);
      if (result.losses) {
        history.push({ iteration: result.iteration, stage: result.stage, losses: result.losses });
      }
      progress.update(
        result.iteration,
        `stage ${result.stage} ${formatLosses(result.losses as Record<string, number>, LOSS_COLUMNS)}`,
      );
      if (result.iteration % settings.checkpointEvery === 0 && !trainer.done) await checkpoint();
    }
  } finally {
    progress.done();
    process.off('SIGINT', onSignal);
  }
  await checkpoint();
  const lossCurve = join(out, 'loss-curve.png');
  if (history.length > 1) await writePngFile(lossCurve, lossCurvePng(history));
  const average = (values: number[]) =>
    values.length === 0 ? NaN : values.reduce((a, b) => a + b, 0) / values.length;
  if (stopRequestedAt !== null) {
    throw new StoppedError(
      `stopped at iteration ${trainer.iteration} of ${trainer.totalIterations} on Ctrl-C; ` +
        `the checkpoint in ${out} is complete, and the same command with --resume continues it`,
    );
  }
  say(`finished at iteration ${trainer.iteration} of ${trainer.totalIterations}; model folder ${out}`);
  return {
    folder: out,
    descriptor,
    secondsPerIteration: { stage1: average(seconds[1]), stage2: average(seconds[2]) },
    lossCurve,
  };
}

