// createTrainer: the two-stage RRL-MedSAM training loop behind a step API
// that a CLI and a browser page can drive. Each step() runs one iteration
// (stage 1 for the first stage1Iterations, then stage 2), waits for the
// device, and returns the losses as numbers every readLossesEvery steps.
//
// Determinism: weights start from the model's seed, the scan order and
// the augmentation generators derive from (seed, iteration) alone, and
// every kernel in the loop is deterministic. The same config, seed and
// data give bitwise identical weights, and state() contains everything a
// resumed run needs to continue bit for bit.

import { noGrad } from '../../autograd/node.js';
import { sync } from '../../device.js';
import { log } from '../../log.js';
import { concat } from '../../ops/layout.js';
import { reshape } from '../../ops/view.js';
import { Adam } from '../../optim/adam.js';
import type { OptimizerStateDict } from '../../optim/optimizer.js';
import { tidy, type Tensor } from '../../tensor.js';
import type { RrlMedSam } from '../../nn/rrl/model.js';
import type { ModelSummary } from '../../nn/rrl/summary.js';
import {
  variantSwitches,
  type TrainingVariant,
  type VariantSwitches,
} from './ablation.js';
import { buildBatch } from './batch.js';
import {
  iterationRandom,
  loadScan,
  loadTeacher,
  prepareAtlas,
  scanCount,
  scanIndexAt,
  type Augment,
  type PreparedAtlas,
  type TrainingData,
} from './data.js';
import { DEFAULT_LOSS_WEIGHTS, type LossWeights } from './losses.js';
import { stage1Iteration } from './stage1.js';
import { pairParameters, stage2Iteration, type Stage2Event } from './stage2.js';
import type { LossName, LossTensors, StepContext } from './step.js';

export interface TrainerConfig {
  variant: TrainingVariant;
  /** Iterations of stage 1 (pre-training). */
  stage1Iterations: number;
  /** Iterations of stage 2 (mutual-EMA fine-tuning). */
  stage2Iterations: number;
  /** Adam learning rate of both branches (1e-3, batch size 1). */
  lr: number;
  betas: readonly [number, number];
  /**
   * EMA coefficient a of stage 2: 0.99 for the mutual EMA. The RRL-MedSAM
   * paper also quotes 0.999 for smoothing weight updates.
   */
  alpha: number;
  weights: LossWeights;
  /** Window edge of the local NCC in voxels. */
  nccWindow: number;
  diceExcludeBackground: boolean;
  /** See LossOptions.detachSegmentationInRegistration. */
  detachSegmentationInRegistration: boolean;
  /**
   * Start stage 2 with new Adam states (true, as fine-tuning usually
   * builds new optimisers) or continue stage 1's moments (false).
   */
  freshStage2Optimizers: boolean;
  /** Seed of the scan order and of the augmentation generators. */
  seed: number;
  /** Read the losses back every this many steps (and at the last one). */
  readLossesEvery: number;
  /** Shuffle the scans each epoch (true) or visit them in index order. */
  shuffle: boolean;
}

export const DEFAULT_TRAINER_CONFIG: Readonly<TrainerConfig> = Object.freeze({
  variant: 'full',
  stage1Iterations: 300,
  stage2Iterations: 300,
  lr: 1e-3,
  betas: [0.9, 0.999] as const,
  alpha: 0.99,
  weights: DEFAULT_LOSS_WEIGHTS,
  nccWindow: 9,
  diceExcludeBackground: false,
  detachSegmentationInRegistration: true,
  freshStage2Optimizers: true,
  seed: 0,
  readLossesEvery: 1,
  shuffle: true,
});

/** Options of createTrainer: any config field, and the hooks. */
export type TrainerOptions = Partial<Omit<TrainerConfig, 'weights'>> & {
  weights?: Partial<LossWeights>;
  augment?: Augment;
  /** Called after every step with its result. */
  onProgress?: (result: StepResult) => void;
};

/** The outcome of one step(). */
export interface StepResult {
  /** Iterations completed, this one included (1 after the first step). */
  iteration: number;
  stage: 1 | 2;
  /** Index of the scan this iteration trained on. */
  scanIndex: number;
  /** Loss values by name, or null on steps that did not read them back. */
  losses: Partial<Record<LossName, number>> | null;
  /** Stage 2's steps in the order they ran (empty in stage 1). */
  events: Stage2Event[];
  /** Wall time of the iteration, including the wait for the device. */
  seconds: number;
}

/**
 * A checkpoint of the trainer. The tensors are handles on the live
 * storage (see Module.stateDict): write them out before the next step,
 * then release them with disposeTrainerState. The generators need no
 * state of their own, because they derive from (seed, iteration).
 */
export interface TrainerState {
  iteration: number;
  seed: number;
  variant: TrainingVariant;
  model: Map<string, Tensor>;
  medicalOptimizer: OptimizerStateDict;
  generalOptimizer: OptimizerStateDict;
}

/** Disposes the tensor handles of a TrainerState. */
export function disposeTrainerState(state: TrainerState): void {
  for (const t of state.model.values()) t.dispose();
  for (const t of state.medicalOptimizer.tensors.values()) t.dispose();
  for (const t of state.generalOptimizer.tensors.values()) t.dispose();
}

function resolveConfig(options: TrainerOptions): TrainerConfig {
  const { augment: _augment, onProgress: _onProgress, ...fields } = options;
  const weights = { ...DEFAULT_LOSS_WEIGHTS, ...options.weights };
  const config: TrainerConfig = { ...DEFAULT_TRAINER_CONFIG, ...fields, weights };
  const op = 'createTrainer';
  const counts = ['stage1Iterations', 'stage2Iterations', 'seed'] as const;
  for (const field of counts) {
    if (!Number.isInteger(config[field]) || config[field] < 0) {
      throw new RangeError(
        `${op}: ${field} must be an integer >= 0, got ${config[field]}`,
      );
    }
  }
  if (!Number.isInteger(config.readLossesEvery) || config.readLossesEvery < 1) {
    throw new RangeError(
      `${op}: readLossesEvery must be a positive integer, got ` +
        config.readLossesEvery,
    );
  }
  if (!(config.alpha >= 0 && config.alpha <= 1)) {
    throw new RangeError(`${op}: alpha must be in [0, 1], got ${config.alpha}`);
  }
  for (const [name, value] of Object.entries(config.weights)) {
    if (!Number.isFinite(value) || value < 0) {
      throw new RangeError(
        `${op}: loss weight ${name} must be a finite number >= 0, got ${value}`,
      );
    }
  }
  variantSwitches(config.variant);
  return config;
}

const LOSS_ORDER: readonly LossName[] = [
  'total',
  'medical',
  'general',
  'registration',
  'smoothness',
  'similarity',
  'registrationDice',
  'medicalSegmentation',
  'generalSegmentation',
  'distillation',
];

/** Stacks the scalar losses into one tensor, to read them back at once. */
function stackLosses(losses: LossTensors): { names: LossName[]; values: Tensor } {
  const names = LOSS_ORDER.filter((name) => losses[name] !== undefined);
  // The losses' graphs were used by backward(), so nothing is recorded.
  const values = noGrad(() =>
    tidy(() =>
      concat(
        names.map((name) => reshape(losses[name]!, [1])),
        0,
      ),
    ),
  );
  return { names, values };
}

export class Trainer {
  readonly config: TrainerConfig;
  readonly switches: VariantSwitches;
  /** Parameter counts of the model, logged when the trainer is created. */
  readonly summary: ModelSummary;
  private medicalOptimizer: Adam;
  private generalOptimizer: Adam;
  private readonly atlas: PreparedAtlas;
  private readonly encoders: { medical: Tensor[]; general: Tensor[] };
  private completed = 0;

  constructor(
    readonly model: RrlMedSam,
    private readonly data: TrainingData,
    private readonly options: TrainerOptions = {},
  ) {
    const op = 'createTrainer';
    this.config = resolveConfig(options);
    this.switches = variantSwitches(this.config.variant);
    if (this.switches.autoPrompt !== model.config.autoPrompt) {
      throw new Error(
        `${op}: variant '${this.config.variant}' trains ` +
          `${this.switches.autoPrompt ? 'with' : 'without'} the auto-prompt, ` +
          `but the model was built with autoPrompt ${model.config.autoPrompt}; ` +
          `build it with variantModelOptions('${this.config.variant}')`,
      );
    }
    const distils = this.switches.distill && this.config.stage1Iterations > 0;
    if (distils && !data.teacher) {
      throw new Error(
        `${op}: variant '${this.config.variant}' distils the teacher in ` +
          "stage 1 but data.teacher is missing; pass teacher features or use " +
          "the 'baseline' variant",
      );
    }
    if (scanCount(data.scans) < 1) {
      throw new RangeError(`${op}: data.scans is empty`);
    }
    const paired = pairParameters(model.generalEncoder, model.medicalEncoder);
    this.encoders = { general: paired.first, medical: paired.second };
    this.atlas = prepareAtlas(op, data.atlas, model.config.numClasses);
    this.medicalOptimizer = this.newOptimizer(model.medicalParameters());
    this.generalOptimizer = this.newOptimizer(model.generalParameters());
    this.summary = model.summary();
    log.info(`train: ${this.config.variant} variant\n${this.summary.table}`);
  }

  private newOptimizer(params: Tensor[]): Adam {
    return new Adam(params, { lr: this.config.lr, betas: this.config.betas });
  }

  /** Iterations completed so far. */
  get iteration(): number {
    return this.completed;
  }

  get totalIterations(): number {
    return this.config.stage1Iterations + this.config.stage2Iterations;
  }

  get done(): boolean {
    return this.completed >= this.totalIterations;
  }

  /** Stage of the next iteration. */
  get stage(): 1 | 2 {
    return this.completed < this.config.stage1Iterations ? 1 : 2;
  }

  private context(): StepContext {
    return {
      model: this.model,
      medicalOptimizer: this.medicalOptimizer,
      generalOptimizer: this.generalOptimizer,
      losses: {
        weights: this.config.weights,
        nccWindow: this.config.nccWindow,
        diceExcludeBackground: this.config.diceExcludeBackground,
        detachSegmentationInRegistration:
          this.config.detachSegmentationInRegistration,
      },
      switches: this.switches,
      alpha: this.config.alpha,
    };
  }

  /** Replaces both optimisers with new ones at the start of stage 2. */
  private resetOptimizers(): void {
    this.medicalOptimizer.dispose();
    this.generalOptimizer.dispose();
    this.medicalOptimizer = this.newOptimizer(this.model.medicalParameters());
    this.generalOptimizer = this.newOptimizer(this.model.generalParameters());
  }

  /** Runs one iteration and returns what it did. */
  async step(): Promise<StepResult> {
    const op = 'Trainer.step';
    if (this.done) {
      throw new Error(
        `${op}: training is complete (${this.completed} of ` +
          `${this.totalIterations} iterations)`,
      );
    }
    const started = performance.now();
    const iteration = this.completed;
    const stage = this.stage;
    const { stage1Iterations, freshStage2Optimizers, seed } = this.config;
    if (stage === 2 && iteration === stage1Iterations && freshStage2Optimizers) {
      this.resetOptimizers();
    }
    const count = scanCount(this.data.scans);
    const scanIndex = scanIndexAt(seed, iteration, count, this.config.shuffle);
    const scan = await loadScan(op, this.data.scans, scanIndex);
    const needsTeacher = stage === 1 && this.switches.distill;
    const teacher =
      needsTeacher && this.data.teacher
        ? await loadTeacher(op, this.data.teacher, scanIndex, scan.image)
        : null;

    let stacked: { names: LossName[]; values: Tensor };
    let events: Stage2Event[] = [];
    try {
      stacked = tidy(() => {
        const batch = buildBatch(
          op,
          this.atlas,
          scan.image,
          teacher?.features ?? null,
          this.model.config.numClasses,
          this.options.augment,
          iteration,
          iterationRandom(seed, iteration),
        );
        const context = this.context();
        if (stage === 1) return stackLosses(stage1Iteration(context, batch));
        const result = stage2Iteration(context, batch, this.encoders);
        events = result.events;
        return stackLosses(result.losses);
      });
    } finally {
      if (scan.owned) scan.image.dispose();
      if (teacher?.owned) teacher.features.dispose();
    }
    this.completed += 1;

    const read =
      this.completed % this.config.readLossesEvery === 0 || this.done;
    let losses: StepResult['losses'] = null;
    try {
      if (read) {
        const values = await stacked.values.toArray();
        losses = {};
        stacked.names.forEach((name, i) => (losses![name] = values[i]));
      } else {
        await sync();
      }
    } finally {
      stacked.values.dispose();
    }
    const result: StepResult = {
      iteration: this.completed,
      stage,
      scanIndex,
      losses,
      events,
      seconds: (performance.now() - started) / 1000,
    };
    this.options.onProgress?.(result);
    return result;
  }

  /**
   * Runs `iterations` steps (default: to the end of training) and returns
   * the result of the last one, or null when none ran.
   */
  async run(
    iterations = this.totalIterations - this.completed,
  ): Promise<StepResult | null> {
    let last: StepResult | null = null;
    for (let i = 0; i < iterations && !this.done; i++) last = await this.step();
    return last;
  }

  /** Returns a checkpoint of the model, both optimisers and the counter. */
  state(): TrainerState {
    return {
      iteration: this.completed,
      seed: this.config.seed,
      variant: this.config.variant,
      model: this.model.stateDict(),
      medicalOptimizer: this.medicalOptimizer.stateDict(),
      generalOptimizer: this.generalOptimizer.stateDict(),
    };
  }

  /**
   * Restores a checkpoint from state(): copies the weights and optimiser
   * states on the device and sets the iteration and seed. Throws, before
   * changing anything, when the variant differs or the iteration is out
   * of range; a mismatched tensor throws from the module or optimiser.
   */
  loadState(state: TrainerState): void {
    const op = 'Trainer.loadState';
    if (state.variant !== this.config.variant) {
      throw new Error(
        `${op}: the checkpoint is of variant '${state.variant}', this ` +
          `trainer runs '${this.config.variant}'`,
      );
    }
    if (
      !Number.isInteger(state.iteration) ||
      state.iteration < 0 ||
      state.iteration > this.totalIterations
    ) {
      throw new RangeError(
        `${op}: iteration ${state.iteration} is outside ` +
          `0..${this.totalIterations}`,
      );
    }
    this.model.loadStateDict(state.model);
    this.medicalOptimizer.loadStateDict(state.medicalOptimizer);
    this.generalOptimizer.loadStateDict(state.generalOptimizer);
    this.completed = state.iteration;
    this.config.seed = state.seed;
  }

  /** Frees the optimiser states and the trainer's atlas tensors. */
  dispose(): void {
    this.medicalOptimizer.dispose();
    this.generalOptimizer.dispose();
    this.atlas.oneHot.dispose();
    this.atlas.labelMap?.dispose();
  }
}

/**
 * Creates a trainer for `model` on `data`. The variant must match how the
 * model was built (see variantModelOptions).
 *
 * @example
 * const model = new RrlMedSam({ preset: 'cpu', numClasses: 5 });
 * const trainer = createTrainer(model, { atlas, scans, teacher }, {
 *   stage1Iterations: 300,
 *   stage2Iterations: 300,
 *   onProgress: (r) => console.log(r.iteration, r.losses),
 * });
 * while (!trainer.done) await trainer.step();
 */
export function createTrainer(
  model: RrlMedSam,
  data: TrainingData,
  options: TrainerOptions = {},
): Trainer {
  return new Trainer(model, data, options);
}
