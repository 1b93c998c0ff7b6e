// Short training runs that check learning, not only mechanics: the
// segmentation of a phantom after training against a fixed Dice bar, and
// the losses on two real IXI scans brought onto the atlas grid the way
// the CLI does (preprocessing and affine pre-alignment).

import { beforeAll, describe, expect, it } from 'vitest';
import { tensor } from '../src/index.js';
import { RrlMedSam } from '../src/nn/rrl/index.js';
import { diceScores } from '../src/pipeline/evaluate/index.js';
import {
  disposePrediction,
  predict,
  prepareModelAtlas,
  toAtlasSpace,
  volumeTensor,
} from '../src/pipeline/experiment.js';
import { readNiftiFile } from '../src/pipeline/nifti-file.js';
import { makePhantom } from '../src/pipeline/phantom.js';
import { loadStructureTable } from '../src/pipeline/structures.js';
import { createTrainer, variantModelOptions } from '../src/pipeline/train/index.js';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { device } from './helpers.js';

beforeAll(device);

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

describe('learning', () => {
  it('yhat_m beats a fixed Dice bar on a phantom', async () => {
    // One phantom is both atlas and target: the registration is the
    // identity, so the pseudo labels are the true labels and the
    // segmentation decoders learn from clean supervision.
    const size = [16, 32, 32] as const;
    const structures = 2;
    const p = makePhantom({ size: [...size], seed: 4, structures });
    const shape = [1, 1, ...size];
    const image = tensor(p.image.data.map((v) => v / 1000), shape);
    const labels = tensor(p.labels.data, shape);
    const model = new RrlMedSam({
      preset: 'tiny',
      numClasses: structures + 1,
      ...variantModelOptions('baseline'),
    });
    const ids = [1, 2];
    const meanDice = async () => {
      const prediction = predict(model, image, image);
      const predicted = await prediction.final.toArray();
      disposePrediction(prediction);
      return mean(diceScores(predicted, p.labels.data, ids));
    };
    const before = await meanDice();
    const trainer = createTrainer(
      model,
      { atlas: { image, labels }, scans: [image] },
      { variant: 'baseline', stage1Iterations: 30, stage2Iterations: 0, lr: 1e-2 },
    );
    await trainer.run();
    // Measured: 0.005 untrained, 0.40 after 30 iterations.
    const after = await meanDice();
    expect(after).toBeGreaterThan(0.35);
    expect(after).toBeGreaterThan(before + 0.2);
    trainer.dispose();
    model.dispose();
    image.dispose();
    labels.dispose();
  });

  it('losses fall on two IXI scans', async () => {
    const root = resolve(import.meta.dirname, '../data/ixi-brain');
    const read = (path: string) => readNiftiFile(join(root, path));
    const table = loadStructureTable(await readFile(join(root, 'structures.csv'), 'utf8'));
    const preprocessing = { size: 32, marginMm: 4, align: 'affine' as const };
    const atlas = prepareModelAtlas(
      await read('images/IXI012-HH-1211_t1.nii.gz'),
      await read('labels/IXI012-HH-1211_labels.nii.gz'),
      preprocessing,
      table,
    );
    const atlasImage = volumeTensor(atlas.image);
    const atlasLabels = volumeTensor(atlas.labels);
    const scans = [];
    for (const path of ['images/IXI013-HH-1212_t1.nii.gz', 'images/IXI014-HH-1236_t1.nii.gz']) {
      scans.push((await toAtlasSpace(await read(path), atlasImage, preprocessing)).image);
    }
    const model = new RrlMedSam({
      preset: 'tiny',
      numClasses: atlas.labelEntries.length,
      ...variantModelOptions('baseline'),
    });
    const iterations = 16;
    const trainer = createTrainer(
      model,
      { atlas: { image: atlasImage, labels: atlasLabels }, scans },
      { variant: 'baseline', stage1Iterations: iterations, stage2Iterations: 0, lr: 3e-3 },
    );
    const losses: Record<string, number>[] = [];
    while (!trainer.done) losses.push((await trainer.step()).losses as Record<string, number>);
    const early = (name: string) => mean(losses.slice(0, 4).map((l) => l[name]));
    const late = (name: string) => mean(losses.slice(-4).map((l) => l[name]));
    expect(late('total')).toBeLessThan(early('total'));
    expect(late('similarity')).toBeLessThan(early('similarity'));
    expect(late('generalSegmentation')).toBeLessThan(early('generalSegmentation'));
    trainer.dispose();
    model.dispose();
    for (const t of [atlasImage, atlasLabels, ...scans]) t.dispose();
  });
});
