// `rrl-medsam evaluate`: scores a model folder on a manifest's test scans
// and writes report.json, report.md, PNG panels for the first cases and
// each case's segmentation and warped atlas on the input's own grid.

import { stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { ready } from '../device.js';
import { writeFileAtomic } from '../io/atomic-file.js';
import { formatReport, formatReportMarkdown, type EvaluationReport } from '../pipeline/evaluate/index.js';
import { evaluateModel, type TestScan } from '../pipeline/evaluation-run.js';
import { loadManifest } from '../pipeline/manifest-file.js';
import type { LoadedModel } from '../pipeline/model-folder.js';
import { loadModelFolder } from '../pipeline/model-folder-file.js';
import { readNiftiFile, writeNiftiFile } from '../pipeline/nifti-file.js';
import { writePngFile } from '../pipeline/preview-file.js';
import { readScan } from './infer.js';

export interface EvaluateSettings {
  model: string;
  manifest: string;
  /** Output folder (default <model>/evaluation). */
  out?: string;
  panels: number;
}

/** Paths of the results that evaluate wrote, with the report. */
export interface EvaluateOutcome {
  report: EvaluationReport;
  folder: string;
  reportPath: string;
  panels: string[];
}

/** Returns the file stem of a scan path: IXI039-HH-1261_t1.nii.gz gives IXI039-HH-1261_t1. */
function stem(path: string): string {
  return basename(path).replace(/\.nii(\.gz)?$/i, '');
}

/** Scores an already loaded model; `evaluate` and `demo` share it. */
export async function evaluateLoaded(
  loaded: LoadedModel,
  settings: EvaluateSettings,
  say: (line: string) => void,
): Promise<EvaluateOutcome> {
  const manifest = await loadManifest(settings.manifest);
  if (manifest.manifest.test.length === 0) {
    throw new Error(`evaluate: ${manifest.path} lists no test scans; add a "test" array of { image, labels }`);
  }
  const folder = resolve(settings.out ?? join(settings.model, 'evaluation'));
  const existing = await stat(folder).catch(() => null);
  if (existing && !existing.isDirectory()) {
    throw new Error(`evaluate: --out ${folder} is a file, not a folder; choose a folder path for the report`);
  }
  const scans: TestScan[] = [];
  for (const [i, entry] of manifest.manifest.test.entries()) {
    scans.push({
      name: stem(entry.image),
      image: await readScan(manifest.resolve(entry.image), `evaluate: test scan ${i + 1}`),
      labels: await readNiftiFile(manifest.resolve(entry.labels)),
    });
  }
  const { descriptor } = loaded;
  const started = performance.now();
  const result = await evaluateModel(loaded.model, loaded.atlas, descriptor.preprocess, scans, {
    labels: descriptor.labels,
    structures: manifest.structures,
    teacher: descriptor.teacher,
    steps: {
      stage1: Math.min(descriptor.step, descriptor.training.stage1Iterations),
      stage2: Math.max(0, descriptor.step - descriptor.training.stage1Iterations),
    },
    panels: settings.panels,
    onCase: (done, total, name) =>
      say(`evaluate ${done}/${total}: ${name} (${((performance.now() - started) / 1000).toFixed(1)} s)`),
  });
  const panels: string[] = [];
  for (const output of result.cases) {
    await writeNiftiFile(join(folder, `${output.name}_segmentation.nii.gz`), output.segmentation, { labels: true });
    await writeNiftiFile(join(folder, `${output.name}_warped-atlas.nii.gz`), output.warpedAtlas);
    if (output.panel) {
      const path = join(folder, `${output.name}_panels.png`);
      await writePngFile(path, output.panel);
      panels.push(path);
    }
  }
  const reportPath = join(folder, 'report.json');
  await writeFileAtomic(reportPath, JSON.stringify(result.report, null, 2) + '\n');
  await writeFileAtomic(join(folder, 'report.md'), formatReportMarkdown(result.report) + '\n');
  await writeFileAtomic(join(folder, 'report.txt'), formatReport(result.report) + '\n');
  return { report: result.report, folder, reportPath, panels };
}

/** Runs `evaluate` and prints the table. */
export async function runEvaluate(
  settings: EvaluateSettings,
  say: (line: string) => void,
): Promise<EvaluateOutcome> {
  const info = await ready();
  say(`device: ${info.adapter}`);
  const loaded = await loadModelFolder(settings.model);
  try {
    const outcome = await evaluateLoaded(loaded, settings, say);
    process.stdout.write(formatReport(outcome.report) + '\n');
    say(`wrote ${outcome.reportPath}, report.md, report.txt, ${outcome.panels.length} panels and the label maps in ${outcome.folder}`);
    return outcome;
  } finally {
    loaded.model.dispose();
  }
}
