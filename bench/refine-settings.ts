// Compare instance optimisation settings on a trained model:
// `npx tsx bench/refine-settings.ts [--model runs/demo/model] [--scans training|test] [--start network|affine] [--setting S]...`
//
// A setting is MODE:STEPS:LR:SMOOTHNESS (see refine.ts), for example
// field:100:0.1:1 or network:60:0.001:1. SMOOTHNESS is the weight l1 of
// L_smooth, while l2 and the NCC window stay the model's. Each setting refines
// the registration of every scan of the embedded IXI split and scores the
// warped atlas labels. The table gives the mean Dice over the model's
// structures, over every MUSE region and over the 17 large ones, the mean
// local NCC, the folding fraction and the seconds per scan (prediction and
// scoring included).
//
// `--scans training` (the default) scores the five training scans, whose
// labels the demo never reads, so settings are chosen without the
// held-out labels. `--scans test` scores the four held-out scans as
// `evaluate` does. `--start affine` zeroes the flow layer of the
// registration decoder first, so the network predicts a zero field and
// every setting refines the affine alignment alone. That shows what the
// steps reach without the network.

import { basename } from 'node:path';
import { ready } from '../src/index.js';
import { embeddedManifest } from '../src/cli/demo.js';
import { readScan } from '../src/cli/infer.js';
import { evaluateModel, type TestScan } from '../src/pipeline/evaluation-run.js';
import { loadManifest, type LoadedManifest } from '../src/pipeline/manifest-file.js';
import { loadModelFolder } from '../src/pipeline/model-folder-file.js';
import { readNiftiFile } from '../src/pipeline/nifti-file.js';
import { refineOptionsOf, type RefineMode } from '../src/pipeline/refine.js';
import { copyInto } from '../src/nn/copy.js';
import { zeros } from '../src/ops/creation.js';
import { runMain, UsageError } from '../scripts/run-main.js';

const USAGE =
  'usage: npx tsx bench/refine-settings.ts [--model DIR] [--scans training|test] [--start network|affine] [--setting MODE:STEPS:LR:SMOOTHNESS]...';

const DEFAULT_SETTINGS = [
  'network:60:0.001:1',
  'field:25:0.1:1',
  'field:50:0.1:1',
  'field:100:0.1:1',
  'field:200:0.1:1',
  'field:100:0.05:1',
  'field:100:0.2:1',
  'field:100:0.1:3',
];

interface Setting {
  text: string;
  mode: RefineMode;
  steps: number;
  lr: number;
  smoothness: number;
}

function parseSetting(text: string): Setting {
  const [mode, ...numbers] = text.split(':');
  const [steps, lr, smoothness] = numbers.map(Number);
  // Plain decimals only: no empty parts, hexadecimal or Infinity.
  const decimal = /^(\d+\.?\d*|\.\d+)(e-?\d+)?$/i;
  const valid =
    (mode === 'field' || mode === 'network') &&
    numbers.length === 3 &&
    numbers.every((part) => decimal.test(part)) &&
    /^\d+$/.test(numbers[0]) &&
    steps > 0 &&
    lr > 0 &&
    Number.isFinite(lr) &&
    Number.isFinite(smoothness);
  if (!valid) throw new UsageError(`bench/refine-settings: --setting ${text} is not MODE:STEPS:LR:SMOOTHNESS\n${USAGE}`);
  return { text, mode, steps, lr, smoothness };
}

function parseArguments(argv: readonly string[]) {
  const parsed = { model: 'runs/demo/model', scans: 'training', start: 'network', settings: [] as Setting[] };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new UsageError(`bench/refine-settings: ${flag} is missing its value\n${USAGE}`);
    if (flag === '--model') parsed.model = value;
    else if (flag === '--scans' && (value === 'training' || value === 'test')) parsed.scans = value;
    else if (flag === '--start' && (value === 'network' || value === 'affine')) parsed.start = value;
    else if (flag === '--setting') parsed.settings.push(parseSetting(value));
    else throw new UsageError(`bench/refine-settings: unknown argument ${flag} ${value}\n${USAGE}`);
  }
  if (parsed.settings.length === 0) parsed.settings = DEFAULT_SETTINGS.map(parseSetting);
  return parsed;
}

/** Reads the split's test or training scans with their label maps (labels/ has both). */
async function labelledScans(split: LoadedManifest, set: string): Promise<TestScan[]> {
  const { manifest, resolve } = split;
  const entries =
    set === 'test'
      ? manifest.test
      : manifest.train.map((image) => ({
          image,
          labels: image.replace('images/', 'labels/').replace(/_t1\.nii\.gz$/, '_labels.nii.gz'),
        }));
  const scans: TestScan[] = [];
  for (const entry of entries) {
    scans.push({
      name: basename(entry.image),
      image: await readScan(resolve(entry.image), 'bench/refine-settings'),
      labels: await readNiftiFile(resolve(entry.labels)),
    });
  }
  return scans;
}

async function main(): Promise<void> {
  const args = parseArguments(process.argv.slice(2));
  await ready();
  const loaded = await loadModelFolder(args.model);
  const { descriptor } = loaded;
  if (args.start === 'affine') {
    const { flow } = loaded.model.registrationDecoder;
    for (const t of [flow.weight, flow.bias!]) {
      const zero = zeros(t.shape);
      copyInto('bench/refine-settings', t, zero);
      zero.dispose();
    }
  }
  const split = await loadManifest(embeddedManifest());
  const { structures } = split;
  const scans = await labelledScans(split, args.scans);
  console.log(
    `${args.model}, the ${scans.length} ${args.scans} scans, refinement from the ${args.start === 'affine' ? 'affine alignment' : "network's field"}; ` +
      'mean Dice of the warped atlas labels\n' +
      '| setting | structures | every region | 17 large | NCC | folding | s/scan |\n' +
      '| --- | --- | --- | --- | --- | --- | --- |',
  );
  const options = {
    labels: descriptor.labels,
    structures,
    teacher: descriptor.teacher,
    steps: { stage1: 0, stage2: 0 },
    panels: 0,
  };
  for (const setting of args.settings) {
    const started = performance.now();
    const { report } = await evaluateModel(loaded.model, loaded.atlas, descriptor.preprocess, scans, {
      ...options,
      refine: {
        ...refineOptionsOf(descriptor.training, setting.steps, descriptor.preprocess.size),
        mode: setting.mode,
        lr: setting.lr,
        smoothness: setting.smoothness,
      },
    });
    const seconds = (performance.now() - started) / 1000 / scans.length;
    const extra = report.extra ?? {};
    // The region rows are named by their counts: "refined (148 regions)".
    const regions = (branch: string, large: boolean) => {
      const pattern = new RegExp(`^${branch} \\(\\d+ ${large ? 'large ' : ''}regions\\)$`);
      return extra[Object.keys(extra).find((key) => pattern.test(key)) ?? '']?.mean ?? NaN;
    };
    const cells = (branch: 'registration' | 'refined', folding: number) =>
      [report.dice[branch]!.mean, regions(branch, false), regions(branch, true), report.ncc[branch]!.mean]
        .map((value) => value.toFixed(3))
        .join(' | ') + ` | ${(folding * 100).toFixed(3)}%`;
    if (setting === args.settings[0]) {
      const start = args.start === 'affine' ? 'affine alone' : 'network alone';
      console.log(`| ${start} | ${cells('registration', report.folding.mean)} | - |`);
    }
    const refined = cells('refined', report.refine!.folding.mean);
    console.log(`| ${setting.text} | ${refined} | ${seconds.toFixed(1)} |`);
  }
}

runMain(import.meta.url, main, USAGE);
