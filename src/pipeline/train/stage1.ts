// Stage 1 (pre-training): f_lie learns from the teacher's features with
// L_rec while the general decoder trains with L_seg^g and the medical
// branch with L_reg and L_seg^m, all from one backward pass.
//
// Decision: one optimiser per branch (medical: f_med and its decoders;
// general: f_lie, its decoder and the projection P), both Adam with the
// same options. Adam updates each parameter from its own gradient and
// moments. Stepping both after one backward pass of the summed loss is
// therefore the same update as one Adam over all parameters, and stage 2
// can step the branches separately with the same optimisers.

import { add, scale } from '../../ops/elementwise.js';
import { tidy } from '../../tensor.js';
import { detach } from '../../nn/rrl/model.js';
import { distillationLoss, segmentationLoss } from './losses.js';
import {
  medicalPass,
  type Batch,
  type LossTensors,
  type StepContext,
} from './step.js';

/**
 * Runs one stage-1 iteration: forward passes of both branches, the loss
 * L = L_reg + L_seg^m + L_seg^g (+ L_rec when distilling), one backward
 * pass and one step of each optimiser. Returns the losses (scalars that
 * outlive the call; the caller disposes them).
 */
export function stage1Iteration(context: StepContext, batch: Batch): LossTensors {
  const { model, losses: options, switches } = context;
  const { weights } = options;
  if (switches.distill && !batch.teacher) {
    throw new Error(
      'stage1Iteration: distillation is on but the batch has no teacher ' +
        "features; pass data.teacher or use the 'baseline' variant",
    );
  }
  return tidy(() => {
    context.medicalOptimizer.zeroGrad();
    context.generalOptimizer.zeroGrad();

    // General branch: yhat_g, and P(f_lie(x_u)) for the distillation.
    const general = model.segmentGeneral(batch.target);
    const prompt = model.config.autoPrompt
      ? model.config.detachPrompt
        ? detach(general.probs)
        : general.probs
      : null;

    // Medical branch: phi, the pseudo label, yhat_m, L_reg and L_seg^m.
    const pass = medicalPass(context, batch, prompt);
    const generalSegmentation = segmentationLoss(
      general.probs,
      pass.pseudoLabel,
      options,
    );
    let total = add(
      pass.medical,
      scale(generalSegmentation, weights.generalSegmentation),
    );
    const losses: LossTensors = { ...pass.losses, generalSegmentation };
    if (switches.distill && batch.teacher) {
      const projected = model.project(general.pyramid);
      const distillation = distillationLoss(projected, batch.teacher);
      total = add(total, scale(distillation, weights.distillation));
      losses.distillation = distillation;
    }
    losses.total = total;

    total.backward();
    context.medicalOptimizer.step();
    context.generalOptimizer.step();
    context.medicalOptimizer.zeroGrad();
    context.generalOptimizer.zeroGrad();
    return losses;
  });
}
