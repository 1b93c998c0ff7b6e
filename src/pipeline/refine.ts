// Instance optimisation of the registration: a few Adam steps on one
// (atlas, target) pair before its field is taken. A network trained on a
// handful of scans predicts a field whose loss these steps can still
// lower, on its training scans as on scans it has not seen
// (bench/README.md measures both). Only image terms enter the loss, so no
// label is used. The default optimises the predicted displacement field
// itself; the other mode trains the network's weights on the pair and
// takes the field they predict.

import { noGrad } from '../autograd/node.js';
import { sync } from '../device.js';
import { copyInto, cloneTensor } from '../nn/copy.js';
import type { RrlMedSam } from '../nn/rrl/model.js';
import { add, scale } from '../ops/elementwise.js';
import { nccLoss } from '../ops/ncc.js';
import { smoothnessLoss } from '../ops/smoothness.js';
import { warp } from '../ops/warp.js';
import { Adam } from '../optim/adam.js';
import { tidy, type Tensor } from '../tensor.js';

/**
 * The parameters of the refinement: 'field' for the displacement field's
 * voxels, starting from the network's prediction, or 'network' for the
 * weights of the medical encoder and the registration decoder, whose
 * prediction is then the field.
 */
export type RefineMode = 'field' | 'network';

/** The mode refineRegistration uses when none is given. */
export const DEFAULT_REFINE_MODE: RefineMode = 'field';

/** Adam's default learning rate per mode: voxels per step for a field. */
export const REFINE_LEARNING_RATES: Readonly<Record<RefineMode, number>> = Object.freeze({ field: 0.1, network: 1e-3 });

export interface RefineOptions {
  /** Adam steps on the pair (0 returns the network's own field). */
  steps: number;
  /** The parameters the steps train (default 'field'). */
  mode?: RefineMode;
  /** Adam learning rate (default REFINE_LEARNING_RATES of the mode). */
  lr?: number;
  /** Weight l1 of L_smooth (default 1). */
  smoothness?: number;
  /** Weight l2 of L_sim (default 1). */
  similarity?: number;
  /** Window edge of the local NCC in voxels (default 9). */
  nccWindow?: number;
  /** Called after each step, once the device has run it, with the steps done. */
  onStep?: (done: number, steps: number) => void;
  /** Called with the result once the steps are done (not for 0 steps). */
  onDone?: (result: RefineResult) => void;
}

/**
 * Returns refinement settings that match a model's training: its weights
 * l1 and l2 and its NCC window (model.json's "training" entry). With
 * `grid`, the model's grid edge, a window larger than the grid is named
 * as a model.json problem too.
 */
export function refineOptionsOf(
  training: { weights: { smoothness: number; similarity: number }; nccWindow?: number },
  steps: number,
  grid = Infinity,
): RefineOptions {
  const weights = training?.weights;
  const nccWindow = training?.nccWindow ?? 9;
  const invalid = (value: unknown) => typeof value !== 'number' || !Number.isFinite(value) || value < 0;
  const problems = [
    invalid(weights?.smoothness) ? `training.weights.smoothness ${JSON.stringify(weights?.smoothness)}` : '',
    invalid(weights?.similarity) ? `training.weights.similarity ${JSON.stringify(weights?.similarity)}` : '',
    !Number.isInteger(nccWindow) || nccWindow < 1 || nccWindow % 2 === 0 || nccWindow > grid
      ? `training.nccWindow ${JSON.stringify(nccWindow)}`
      : '',
  ].filter((text) => text !== '');
  if (problems.length > 0) {
    throw new Error(
      `refine: model.json has ${problems.join(', ')}; refinement needs the weights l1 and l2 as numbers of 0 or ` +
        `more and an odd NCC window${Number.isFinite(grid) ? ` of at most the grid's ${grid}` : ''}, as train writes them; ` +
        'restore model.json from the training run',
    );
  }
  return { steps, smoothness: weights.smoothness, similarity: weights.similarity, nccWindow };
}

/** The refined field and the image loss before and after the steps. */
export interface RefineResult {
  /** phi [1, 3, D, H, W] in voxels, warping the atlas onto the target. */
  flow: Tensor;
  /** l1 L_smooth + l2 L_sim of the network's own field (first step). */
  lossBefore: number;
  /** The same loss of the returned field. */
  lossAfter: number;
}

/**
 * Minimises L_reg's image terms (l1 L_smooth + l2 L_sim) for `atlas` ->
 * `target` alone by `options.steps` Adam steps and returns the refined
 * field. In 'field' mode the steps move the network's predicted field
 * directly. In 'network' mode they train the medical encoder and the
 * registration decoder, the field is their prediction, and the weights are
 * put back afterwards. Either way the model is unchanged and the
 * segmentation decoders never see the refinement. Both images are
 * [1, 1, D, H, W] on the model's grid, the target preprocessed and
 * affinely aligned to the atlas as segmentScan places it.
 */
export async function refineRegistration(
  model: RrlMedSam,
  atlas: Tensor,
  target: Tensor,
  options: RefineOptions,
): Promise<RefineResult> {
  const op = 'refineRegistration';
  const { steps, mode = DEFAULT_REFINE_MODE, smoothness = 1, similarity = 1, nccWindow = 9, onStep, onDone } = options;
  if (!Number.isInteger(steps) || steps < 0) {
    throw new RangeError(`${op}: steps ${steps} must be a whole number of 0 or more`);
  }
  if (mode !== 'field' && mode !== 'network') {
    throw new RangeError(`${op}: mode ${JSON.stringify(mode)} must be 'field' or 'network'`);
  }
  const lr = options.lr ?? REFINE_LEARNING_RATES[mode];
  if (!(lr > 0)) throw new RangeError(`${op}: lr ${lr} must be above 0`);
  for (const [name, weight] of [['smoothness', smoothness], ['similarity', similarity]] as const) {
    if (!Number.isFinite(weight) || weight < 0) {
      throw new RangeError(`${op}: ${name} ${weight} must be a finite weight of 0 or more`);
    }
  }
  const smallest = Math.min(...target.shape.slice(2));
  if (!Number.isInteger(nccWindow) || nccWindow < 1 || nccWindow % 2 === 0 || nccWindow > smallest) {
    throw new RangeError(
      `${op}: nccWindow ${nccWindow} must be an odd whole number from 1 to ${smallest}, the smallest edge of the volume`,
    );
  }
  const imageLoss = (flow: Tensor) =>
    add(
      scale(smoothnessLoss(flow), smoothness),
      scale(nccLoss(warp(atlas, flow), target, { window: nccWindow }), similarity),
    );
  const [startFlow, startLoss] = noGrad(() =>
    tidy(() => {
      const flow = model.register(atlas, target).flow;
      return [flow, imageLoss(flow)];
    }),
  );
  const lossBefore = await startLoss.item();
  startLoss.dispose();
  if (!Number.isFinite(lossBefore)) {
    startFlow.dispose();
    throw new Error(
      `${op}: the image loss of the network's own field is ${lossBefore} with weights l1 ${smoothness} and ` +
        `l2 ${similarity}: either a weight is too large for float32, or the model or the images contain ` +
        'values that are not finite (retrain a damaged model folder)',
    );
  }
  if (steps === 0) return { flow: startFlow, lossBefore, lossAfter: lossBefore };

  const settings = { steps, lr, onStep, imageLoss };
  let refined: Omit<RefineResult, 'lossBefore'>;
  if (mode === 'field') {
    refined = await optimiseField(startFlow, settings);
  } else {
    startFlow.dispose();
    refined = await optimiseNetwork(model, atlas, target, settings);
  }
  const result = { ...refined, lossBefore };
  try {
    if (!Number.isFinite(result.lossAfter)) {
      throw new Error(
        `${op}: the image loss went from ${lossBefore} to ${result.lossAfter} in ${steps} steps at lr ${lr}, ` +
          `with weights l1 ${smoothness} and l2 ${similarity}; lower lr or the weights`,
      );
    }
    onDone?.(result);
  } catch (error) {
    result.flow.dispose();
    throw error;
  }
  return result;
}

interface StepSettings {
  steps: number;
  lr: number;
  onStep?: (done: number, steps: number) => void;
  imageLoss: (flow: Tensor) => Tensor;
}

/** Runs `steps` Adam steps of `loss`, waiting for the device after each. */
async function adamSteps(parameters: Tensor[], loss: () => Tensor, { steps, lr, onStep }: StepSettings): Promise<void> {
  const optimizer = new Adam(parameters, { lr });
  try {
    for (let step = 0; step < steps; step++) {
      tidy(() => {
        optimizer.zeroGrad();
        loss().backward();
        optimizer.step();
        optimizer.zeroGrad();
      });
      // Waiting for the device after each step keeps the queue short and
      // lets a progress bar show real time.
      await sync();
      onStep?.(step + 1, steps);
    }
  } finally {
    optimizer.dispose();
  }
}

/** Moves the voxels of `flow` (taken over) and returns them with their loss. */
async function optimiseField(flow: Tensor, settings: StepSettings): Promise<Omit<RefineResult, 'lossBefore'>> {
  flow.requiresGrad = true;
  try {
    await adamSteps([flow], () => settings.imageLoss(flow), settings);
  } catch (error) {
    flow.dispose();
    throw error;
  } finally {
    flow.requiresGrad = false;
    flow.grad?.dispose();
    flow.grad = null;
  }
  const endLoss = noGrad(() => tidy(() => settings.imageLoss(flow)));
  const lossAfter = await endLoss.item();
  endLoss.dispose();
  return { flow, lossAfter };
}

/** Trains the registration's weights on the pair; returns their field. */
async function optimiseNetwork(
  model: RrlMedSam,
  atlas: Tensor,
  target: Tensor,
  settings: StepSettings,
): Promise<Omit<RefineResult, 'lossBefore'>> {
  const parameters = [...model.medicalEncoder.parameters(), ...model.registrationDecoder.parameters()];
  const saved = parameters.map((t) => cloneTensor('refineRegistration.save', t));
  try {
    await adamSteps(parameters, () => settings.imageLoss(model.register(atlas, target).flow), settings);
    const [flow, endLoss] = noGrad(() =>
      tidy(() => {
        const field = model.register(atlas, target).flow;
        return [field, settings.imageLoss(field)];
      }),
    );
    const lossAfter = await endLoss.item();
    endLoss.dispose();
    return { flow, lossAfter };
  } finally {
    parameters.forEach((t, index) => copyInto('refineRegistration.restore', t, saved[index]));
    saved.forEach((t) => t.dispose());
    model.zeroGrad();
  }
}
