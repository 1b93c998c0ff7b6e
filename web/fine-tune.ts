// Fine-tuning of the loaded model on the loaded pair: the atlas is
// registered onto the scan by stage-2 iterations of the trainer (the
// medical branch's registration and segmentation losses, then the
// general branch's step), on the scan alone. The weights change in place,
// so a later segmentation uses the fine-tuned model.

import { toAtlasSpace, volumeTensor } from '../src/pipeline/experiment.js';
import type { LoadedModel } from '../src/pipeline/model-folder.js';
import { createTrainer, type StepResult } from '../src/pipeline/train/index.js';
import type { Volume } from '../src/pipeline/volume.js';

export interface FineTuneHooks {
  status(text: string): void;
  step(result: StepResult, total: number): void;
  /** Polled between steps; true ends training early. */
  stopRequested(): boolean;
}

/** Loss terms of stage 2 that the page plots, with their titles. */
export const FINE_TUNE_SERIES = [
  { key: 'registration', title: 'L_reg' },
  { key: 'similarity', title: '-NCC' },
  { key: 'registrationDice', title: 'Dice loss, warped atlas' },
];

/**
 * Runs `iterations` stage-2 iterations of `loaded.model` on the pair
 * (atlas, `scan`) with the model's own training settings (variant, seed,
 * learning rate, EMA coefficient), without augmentation. Returns the
 * iterations completed, fewer when stopped early.
 */
export async function fineTuneRegistration(
  loaded: LoadedModel,
  scan: Volume,
  iterations: number,
  hooks: FineTuneHooks,
): Promise<number> {
  const { descriptor, model, atlas } = loaded;
  const atlasImage = volumeTensor(atlas.image);
  const atlasLabels = volumeTensor(atlas.labels);
  hooks.status('aligning the scan to the atlas');
  let placed;
  try {
    placed = await toAtlasSpace(scan, atlasImage, descriptor.preprocess);
  } catch (error) {
    atlasImage.dispose();
    atlasLabels.dispose();
    throw error;
  }
  try {
    const trainer = createTrainer(
      model,
      {
        atlas: { image: atlasImage, labels: atlasLabels },
        scans: [placed.image],
      },
      {
        variant: descriptor.training.variant,
        stage1Iterations: 0,
        stage2Iterations: iterations,
        seed: descriptor.training.seed,
        lr: descriptor.training.lr,
        alpha: descriptor.training.alpha,
      },
    );
    try {
      hooks.status('training');
      while (!trainer.done && !hooks.stopRequested()) {
        hooks.step(await trainer.step(), trainer.totalIterations);
      }
      descriptor.step += trainer.iteration;
      return trainer.iteration;
    } finally {
      trainer.dispose();
    }
  } finally {
    for (const t of [atlasImage, atlasLabels, placed.image]) t.dispose();
  }
}
