// `rrl-medsam evaluate`: scores a model folder on a manifest's test scans
// and writes report.json, report.md, PNG panels for the first cases and
// each case's segmentation and warped atlas on the input's own grid.

import { basename, join, resolve } from 'node:path';
import { ready } from '../device.js';
import { writeFileAtomic } from '../io/atomic-file.js';
import { formatReport, formatReportMarkdown, type EvaluationReport } from '../pipeline/evaluate/index.js';
import { evaluateModel, type TestScan } from '../pipeline/evaluation-run.js';
import { loadManifest } from '../pipeline/manifest-file.js';
import { MODEL_FILES, type LoadedModel, type ModelDescriptor } from '../pipeline/model-folder.js';
import { loadModelFolder } from '../pipeline/model-folder-file.js';
import { refineOptionsOf } from '../pipeline/refine.js';
import { readNiftiFile, writeNiftiFile } from '../pipeline/nifti-file.js';
import { writePngFile } from '../pipeline/preview-file.js';
import { checkOutputFolder, readScan } from './infer.js';

export interface EvaluateSettings {
  model: string;
  manifest: string;
  /** Output folder (default <model>/evaluation). */
  out?: string;
  panels: number;
  /**
   * Adam steps of instance optimisation on each case, scored as the
   * "refined" registration next to the network's own (0: none).
   */
  refine: number;
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

/**
 * Throws when the model's classes are structures of a table (named, not
 * "label N") but the manifest names no table, since the test label codes
 * then cannot be grouped into those classes and every Dice would read 0.
 */
function checkStructureTable(descriptor: ModelDescriptor, manifestPath: string, hasTable: boolean): void {
  if (hasTable) return;
  const named = descriptor.labels.filter((entry) => entry.id > 0 && !/^label -?\d+(\.\d+)?$/.test(entry.name));
  if (named.length === 0) return;
  const examples = named.slice(0, 3).map((entry) => entry.name).join(', ');
  throw new Error(
    `evaluate: the model's classes are structures of a table (${examples}, ...), but the ` +
      `manifest ${manifestPath} names no "structures" table, so its test labels cannot be ` +
      'grouped into them; add the "structures" line of the manifest the model was trained ' +
      `with${descriptor.manifest ? ` (${descriptor.manifest})` : ''}`,
  );
}

/** Scores an already loaded model; `evaluate` and `demo` share it. */
export async function evaluateLoaded(
  loaded: LoadedModel,
  settings: EvaluateSettings,
  say: (line: string) => void,
): Promise<EvaluateOutcome> {
  const folder = resolve(settings.out ?? join(settings.model, 'evaluation'));
  await checkOutputFolder('evaluate', 'out', folder);
  const manifest = await loadManifest(settings.manifest);
  for (const warning of manifest.report?.warnings ?? []) say(`warning: manifest ${manifest.path}: ${warning}`);
  if (manifest.manifest.test.length === 0) {
    throw new Error(`evaluate: ${manifest.path} lists no test scans; add a "test" array of { image, labels }`);
  }
  const { descriptor } = loaded;
  checkStructureTable(descriptor, manifest.path, manifest.structures !== undefined);
  if (!loaded.atlas.regions) {
    say(
      `note: the model folder has no ${MODEL_FILES.atlasRegions}, so the report leaves out ` +
        "the registration Dice over the atlas's full parcellation",
    );
  }
  const scans: TestScan[] = [];
  for (const [i, entry] of manifest.manifest.test.entries()) {
    const labelsPath = manifest.resolve(entry.labels);
    const labels = await readNiftiFile(labelsPath);
    if (labels.data.every((value) => value === 0)) {
      throw new Error(
        `evaluate: test scan ${i + 1} labels ${labelsPath}: every voxel is 0 (background), so ` +
          'there is nothing to score; give the label map of that scan',
      );
    }
    scans.push({
      name: stem(entry.image),
      image: await readScan(manifest.resolve(entry.image), `evaluate: test scan ${i + 1}`),
      labels,
    });
  }
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
    refine: settings.refine > 0 ? refineOptionsOf(descriptor.training, settings.refine, descriptor.preprocess.size) : undefined,
    onCase: (done, total, name) =>
      say(
        `evaluate ${done}/${total}: ${name}${settings.refine > 0 ? `, registration refined by ${settings.refine} ${settings.refine === 1 ? 'step' : 'steps'}` : ''} ` +
          `(${((performance.now() - started) / 1000).toFixed(1)} s)`,
      ),
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
    say(
      `note: scans are registered to the atlas stored in ${settings.model}; the manifest's ` +
        'atlas entry is only checked, not used',
    );
    const outcome = await evaluateLoaded(loaded, settings, say);
    process.stdout.write(formatReport(outcome.report) + '\n');
    const panels = outcome.panels.length === 1 ? '1 panel' : `${outcome.panels.length} panels`;
    say(`wrote ${outcome.reportPath}, report.md, report.txt, ${panels} and the label maps in ${outcome.folder}`);
    return outcome;
  } finally {
    loaded.model.dispose();
  }
}
