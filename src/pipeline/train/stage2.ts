// Stage 2 (fine-tuning): mutual EMA between the encoders. Per iteration,
// in this order:
//   1. one optimiser step on the medical branch with L_med = L_reg + L_seg^m;
//   2. theta_lie <- a theta_lie + (1 - a) theta_med  (f_lie follows f_med);
//   3. one optimiser step on the general branch with L_gen = L_seg^g;
//   4. theta_med <- a theta_med + (1 - a) theta_lie  (f_med follows f_lie).
// Steps 2 and 4 pair the two encoders' parameters by name (both are
// Encoder3d of one config); the ablation variants drop one or both.
//
// Decision: step 3's pseudo label is the one step 1 computed (y_a o phi
// before the medical update), detached, so each iteration runs the
// registration path once.

import { emaUpdate } from '../../optim/ema.js';
import { formatShape, tidy, type Tensor } from '../../tensor.js';
import type { Module } from '../../nn/module.js';
import { scale } from '../../ops/elementwise.js';
import { segmentationLoss } from './losses.js';
import {
  medicalPass,
  type Batch,
  type LossTensors,
  type StepContext,
} from './step.js';

/** The four steps of a stage-2 iteration, as reported in order. */
export type Stage2Event =
  | 'medical-step'
  | 'ema-to-general'
  | 'general-step'
  | 'ema-to-medical';

/** The parts of a mutual-EMA iteration, independent of the networks. */
export interface MutualEmaParts {
  /** Step 1: one optimiser step of the medical branch. */
  medicalStep(): void;
  /** Step 3: one optimiser step of the general branch. */
  generalStep(): void;
  /** theta_med: the medical encoder's parameters. */
  medicalEncoder: readonly Tensor[];
  /** theta_lie: the general encoder's parameters, paired by index. */
  generalEncoder: readonly Tensor[];
}

export interface MutualEmaOptions {
  alpha: number;
  emaToGeneral: boolean;
  emaToMedical: boolean;
}

/**
 * Runs steps 1 to 4 of one mutual-EMA iteration and returns the steps
 * that ran, in order. Steps 1 and 3 always run; 2 and 4 follow the
 * switches.
 */
export function mutualEmaIteration(
  parts: MutualEmaParts,
  options: MutualEmaOptions,
): Stage2Event[] {
  const events: Stage2Event[] = [];
  parts.medicalStep();
  events.push('medical-step');
  if (options.emaToGeneral) {
    emaUpdate(parts.generalEncoder, parts.medicalEncoder, options.alpha);
    events.push('ema-to-general');
  }
  parts.generalStep();
  events.push('general-step');
  if (options.emaToMedical) {
    emaUpdate(parts.medicalEncoder, parts.generalEncoder, options.alpha);
    events.push('ema-to-medical');
  }
  return events;
}

/**
 * Returns the parameters of two modules of one architecture, paired by
 * name. Throws naming the first name or shape that differs.
 */
export function pairParameters(
  first: Module,
  second: Module,
): { first: Tensor[]; second: Tensor[] } {
  const a = first.namedParameters();
  const b = second.namedParameters();
  const problem = (detail: string) =>
    new Error(`pairParameters: the encoders differ: ${detail}`);
  if (a.length !== b.length) {
    throw problem(`${a.length} parameters against ${b.length}`);
  }
  a.forEach(([name, t], i) => {
    const [otherName, other] = b[i];
    if (name !== otherName) throw problem(`"${name}" against "${otherName}"`);
    const sameShape =
      t.rank === other.rank &&
      t.shape.every((size, axis) => size === other.shape[axis]);
    if (!sameShape) {
      throw problem(
        `${name} is ${formatShape(t.shape)} against ${formatShape(other.shape)}`,
      );
    }
  });
  return { first: a.map(([, t]) => t), second: b.map(([, t]) => t) };
}

/** Result of a stage-2 iteration. */
export interface Stage2Result {
  losses: LossTensors;
  events: Stage2Event[];
}

/**
 * Runs one stage-2 iteration on the networks: the medical step (prompted
 * by yhat_g of the general branch before any update), the EMA steps the
 * variant keeps, and the general step. Loss tensors outlive the call.
 */
export function stage2Iteration(
  context: StepContext,
  batch: Batch,
  encoders: { medical: readonly Tensor[]; general: readonly Tensor[] },
): Stage2Result {
  const { model, losses: options, switches } = context;
  const medicalOptimizer = context.medicalOptimizer;
  const generalOptimizer = context.generalOptimizer;
  return tidy(() => {
    const losses: LossTensors = {};
    let pseudoLabel: Tensor | null = null;
    const medicalStep = () => {
      medicalOptimizer.zeroGrad();
      generalOptimizer.zeroGrad();
      const prompt = model.promptMask(batch.target);
      const pass = medicalPass(context, batch, prompt);
      pass.medical.backward();
      medicalOptimizer.step();
      // Without detachPrompt, L_med also reached the general branch; step
      // 1 updates the medical branch only, so those gradients are dropped.
      medicalOptimizer.zeroGrad();
      generalOptimizer.zeroGrad();
      Object.assign(losses, pass.losses);
      pseudoLabel = pass.pseudoLabel;
    };
    const generalStep = () => {
      const general = model.segmentGeneral(batch.target);
      const loss = segmentationLoss(general.probs, pseudoLabel!, options);
      const weighted = scale(loss, options.weights.generalSegmentation);
      weighted.backward();
      generalOptimizer.step();
      generalOptimizer.zeroGrad();
      losses.generalSegmentation = loss;
      losses.general = weighted;
    };
    const events = mutualEmaIteration(
      {
        medicalStep,
        generalStep,
        medicalEncoder: encoders.medical,
        generalEncoder: encoders.general,
      },
      {
        alpha: context.alpha,
        emaToGeneral: switches.emaToGeneral,
        emaToMedical: switches.emaToMedical,
      },
    );
    return { losses, events };
  });
}
