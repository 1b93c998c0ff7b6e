// `rrl-medsam segment` and `rrl-medsam register`: inference with a model
// folder on scans of any size, spacing and orientation. Results are
// written on the input's own grid and affine, so they overlay the input in
// any viewer.

import { realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { noGrad } from '../autograd/node.js';
import { ready } from '../device.js';
import { composeFlows, warp } from '../ops/warp.js';
import { alignAffine } from '../pipeline/affine-align.js';
import { affineFlow } from '../pipeline/affine-flow.js';
import { flowToDisplacementField } from '../pipeline/displacement.js';
import { segmentScan, volumeTensor } from '../pipeline/experiment.js';
import type { LoadedModel } from '../pipeline/model-folder.js';
import { formatVoxel, gridDifference, sameGrid } from '../pipeline/manifest-validate.js';
import { loadModelFolder } from '../pipeline/model-folder-file.js';
import { readNiftiFile, writeNiftiFile } from '../pipeline/nifti-file.js';
import { preprocessImage, preprocessLabels } from '../pipeline/preprocess.js';
import { refineOptionsOf, refineRegistration, type RefineOptions } from '../pipeline/refine.js';
import { otsuThreshold } from '../pipeline/crop.js';
import { panelPng } from '../pipeline/preview.js';
import { warpScanThroughField } from '../pipeline/warp-scan.js';
import { writePngFile } from '../pipeline/preview-file.js';
import type { Volume } from '../pipeline/volume.js';
import { unwritableReason } from '../io/atomic-file.js';
import { tidy, type Tensor } from '../tensor.js';
import { UsageError } from './args.js';
import { Progress } from './progress.js';

export interface SegmentSettings {
  model: string;
  input: string;
  out: string;
  /** Also write the atlas warped onto the input. */
  warped?: string;
  /** Also write the atlas labels warped onto the input. */
  warpedLabels?: string;
  /** Also write a PNG of the scan with the label overlay. */
  preview?: string;
  /** Refine the registration (--warped, --warped-labels) by this many steps (default 0). */
  refine?: number;
}

/**
 * Minimum number of voxels above the Otsu threshold in a scan. Below a
 * 4-voxel cube the foreground can vanish when resampled to the model's grid.
 */
const MIN_FOREGROUND_VOXELS = 64;

/**
 * Throws a UsageError when `folder` cannot become an output folder (it is
 * a file, lies under one, or is not writable), before any work.
 */
export async function checkOutputFolder(verb: string, flag: string, folder: string): Promise<void> {
  // A file path inside the folder is checked, because the folder may not exist yet.
  const reason = await unwritableReason(join(resolve(folder), '.write-check'));
  if (reason !== null) {
    throw new UsageError(`${verb}: --${flag} ${folder} cannot be the output folder: ${reason}`, verb);
  }
}

/** Reads a scan and checks it is one 3D volume the pipeline accepts. */
export async function readScan(path: string, role: string): Promise<Volume> {
  const volume = await readNiftiFile(path);
  const spatial = volume.dims.slice(0, 3);
  if (volume.dims.length !== 3 || spatial.some((n) => n < 2)) {
    throw new Error(
      `${role} ${path}: dims [${volume.dims.join(', ')}] are not a 3D scan; ` +
        'rrl-medsam takes one 3D volume per scan (a 2D image or a 4D ' +
        'series is not supported: extract the volume first)',
    );
  }
  const data = volume.data;
  const bad = data.findIndex((value) => !Number.isFinite(value));
  if (bad >= 0) {
    throw new Error(
      `${role} ${path}: voxel ${formatVoxel(bad, volume.dims)} is ${data[bad]}; the ` +
        'intensities must be finite, so replace NaN and infinite values (with 0, for ' +
        'example) and run again',
    );
  }
  if (data.every((value) => value === data[0])) {
    throw new Error(
      `${role} ${path}: every voxel is ${data[0]}, so the scan has no anatomy to ` +
        'work on; check that the file is the intended scan',
    );
  }
  const threshold = otsuThreshold(data);
  let foreground = 0;
  for (let i = 0; i < data.length && foreground < MIN_FOREGROUND_VOXELS; i++) {
    if (data[i] > threshold) foreground++;
  }
  if (foreground < MIN_FOREGROUND_VOXELS) {
    throw new Error(
      `${role} ${path}: only ${foreground === 1 ? '1 voxel lies' : `${foreground} voxels lie`} above ` +
        `the foreground threshold ${threshold.toPrecision(4)}, too few to find and align ` +
        `the anatomy (at least ${MIN_FOREGROUND_VOXELS} are needed); check that the file ` +
        'is the intended scan',
    );
  }
  return volume;
}

/**
 * Returns the absolute path of `path` with every symbolic link resolved,
 * for the parts that exist, so two spellings of one file compare equal.
 */
function canonicalPath(path: string): string {
  const absolute = resolve(path);
  try {
    return realpathSync(absolute);
  } catch {
    const parent = dirname(absolute);
    // The root exists, so the recursion ends there.
    return parent === absolute ? absolute : join(canonicalPath(parent), basename(absolute));
  }
}

/**
 * Throws a UsageError when an output path equals an input path or another
 * output path, or lies inside the `--model` folder, before any work, so
 * no result overwrites a scan, the model or another result. Both records
 * map flag names to paths (undefined when not given). Paths compare
 * after symbolic links are resolved.
 */
export function checkDistinctOutputs(
  verb: string,
  inputs: Record<string, string | undefined>,
  outputs: Record<string, string | undefined>,
  model?: string,
): void {
  if (model !== undefined) {
    const folder = canonicalPath(model);
    for (const [flag, path] of Object.entries(outputs)) {
      if (path === undefined) continue;
      const inside = relative(folder, canonicalPath(path));
      if (inside !== '' && !inside.startsWith('..') && !isAbsolute(inside)) {
        throw new UsageError(
          `${verb}: --${flag} ${path} is inside the --model folder ${model}, whose files ` +
            `the model needs; choose a --${flag} path outside it`,
          verb,
        );
      }
    }
  }
  const seen = new Map<string, string>();
  for (const [flag, path] of Object.entries(inputs)) {
    if (path !== undefined) seen.set(canonicalPath(path), flag);
  }
  for (const [flag, path] of Object.entries(outputs)) {
    if (path === undefined) continue;
    const absolute = canonicalPath(path);
    const earlier = seen.get(absolute);
    if (earlier !== undefined) {
      throw new UsageError(
        `${verb}: --${flag} ${path} is the same path as --${earlier}; choose another --${flag} path`,
        verb,
      );
    }
    seen.set(absolute, flag);
  }
}

const NIFTI_SUFFIXES = ['.nii', '.nii.gz'];

/**
 * Throws a UsageError when an output path given for a flag does not end in
 * one of `suffixes`, so a wrong name fails before any work.
 */
export function checkOutputSuffix(verb: string, flag: string, path: string | undefined, suffixes: string[]): void {
  if (path === undefined || suffixes.some((suffix) => path.toLowerCase().endsWith(suffix))) return;
  throw new UsageError(`${verb}: --${flag} ${path} must end in ${suffixes.join(' or ')}`, verb);
}

/**
 * Throws a UsageError naming the flag when an output path cannot be
 * written (a folder, under a file, without permission), before any work,
 * so that no output is written when a later one would fail.
 */
export async function checkWritableOutputs(
  verb: string,
  outputs: Record<string, string | undefined>,
): Promise<void> {
  for (const [flag, path] of Object.entries(outputs)) {
    if (path === undefined) continue;
    const reason = await unwritableReason(resolve(path));
    if (reason !== null) {
      throw new UsageError(`${verb}: --${flag} ${path} cannot be written: ${reason}`, verb);
    }
  }
}

function labelIds(loaded: LoadedModel): number[] {
  return loaded.descriptor.labels.map((entry) => entry.id);
}

/** Runs `segment`; returns the structures found and the timings. */
export async function runSegment(
  settings: SegmentSettings,
  say: (line: string) => void,
): Promise<{ structures: number; timings: Record<string, number> }> {
  const outputs = {
    out: settings.out,
    warped: settings.warped,
    'warped-labels': settings.warpedLabels,
    preview: settings.preview,
  };
  checkDistinctOutputs(
    'segment',
    { input: settings.input },
    outputs,
    settings.model,
  );
  checkOutputSuffix('segment', 'out', settings.out, NIFTI_SUFFIXES);
  checkOutputSuffix('segment', 'warped', settings.warped, NIFTI_SUFFIXES);
  checkOutputSuffix('segment', 'warped-labels', settings.warpedLabels, NIFTI_SUFFIXES);
  checkOutputSuffix('segment', 'preview', settings.preview, ['.png']);
  if ((settings.refine ?? 0) > 0 && !settings.warped && !settings.warpedLabels) {
    throw new UsageError(
      `segment: --refine ${settings.refine} changes only the warped atlas; add --warped-labels FILE or --warped FILE`,
      'segment',
    );
  }
  await checkWritableOutputs('segment', outputs);
  const info = await ready();
  say(`device: ${info.adapter}`);
  const loaded = await loadModelFolder(settings.model);
  try {
    const scan = await readScan(settings.input, 'segment: --input');
    const result = await segmentScan(
      loaded.model,
      loaded.atlas,
      loaded.descriptor.preprocess,
      scan,
      labelIds(loaded),
      undefined,
      { warpedLabels: settings.warpedLabels !== undefined, refine: refineSettings(loaded, settings.refine ?? 0, say) },
    );
    await writeNiftiFile(settings.out, result.labels, { labels: true });
    say(`wrote ${settings.out} (${result.labels.dims.join('x')}, the input's grid)`);
    if (settings.warped) {
      await writeNiftiFile(settings.warped, result.warpedAtlas);
      say(`wrote ${settings.warped}`);
    }
    if (settings.warpedLabels && result.warpedLabels) {
      await writeNiftiFile(settings.warpedLabels, result.warpedLabels, { labels: true });
      say(`wrote ${settings.warpedLabels} (the atlas labels warped by the registration, the input's grid)`);
    }
    if (settings.preview) {
      const size = loaded.descriptor.preprocess.size;
      const grid = { dims: [size, size, size], affine: loaded.atlas.image.affine };
      const image = { ...loaded.atlas.image, ...grid, data: result.onAtlasGrid.image };
      const png = panelPng([
        { image, title: 'scan' },
        { image, labels: { ...image, data: result.onAtlasGrid.labels }, title: 'segmentation' },
      ]);
      await writePngFile(settings.preview, png);
      say(`wrote ${settings.preview}`);
    }
    const found = new Set(result.labels.data);
    found.delete(0);
    const t = result.timings;
    say(
      `${found.size} of ${loaded.descriptor.labels.length - 1} structures found; ` +
        `preprocess ${(t.preprocess / 1000).toFixed(2)} s, inference ` +
        `${(t.inference / 1000).toFixed(2)} s, total ${(t.total / 1000).toFixed(2)} s`,
    );
    return { structures: found.size, timings: t };
  } finally {
    loaded.model.dispose();
  }
}

/** Checks the moving label map: on the moving scan's grid, integer values; errors name the file. */
function checkMovingLabels(
  path: string,
  labels: Volume,
  movingScan: Volume,
  moving: ReturnType<typeof preprocessImage>,
): void {
  if (!sameGrid(labels, movingScan)) {
    throw new Error(
      `register: --moving-labels ${path}: ${gridDifference(labels, movingScan)}; give the ` +
        'label map of the --moving scan, on its grid',
    );
  }
  try {
    // Preprocessing checks the values, as it does for the atlas labels.
    preprocessLabels(labels, moving);
  } catch (error) {
    throw new Error(
      `register: --moving-labels ${path}: ${(error as Error).message}; give the integer ` +
        'label map of the moving scan, on its grid',
      { cause: error },
    );
  }
}

export interface RegisterSettings {
  model: string;
  moving: string;
  fixed: string;
  out: string;
  /** Also write the displacement field (NIfTI vector, mm). */
  flow?: string;
  /** A label map of the moving scan to warp with nearest sampling. */
  movingLabels?: string;
  labelsOut?: string;
  /** Adam steps of instance optimisation on this pair (0: the network's field). */
  refine?: number;
}

/**
 * Returns the registration branch's field from `moving` onto `fixed`. With
 * `refine` steps, returns the field after instance optimisation on this
 * pair instead, showing a progress bar and then the image loss before and
 * after.
 */
async function registrationFlow(
  loaded: LoadedModel,
  moving: Tensor,
  fixed: Tensor,
  refine: number,
  say: (line: string) => void,
): Promise<Tensor> {
  if (refine === 0) return noGrad(() => loaded.model.register(moving, fixed).flow);
  const result = await refineRegistration(loaded.model, moving, fixed, refineSettings(loaded, refine, say)!);
  return result.flow;
}

/**
 * Returns the refinement options of `refine` steps for `loaded`, with a
 * progress bar and a closing line of the image loss before and after, or
 * undefined for 0 steps.
 */
function refineSettings(loaded: LoadedModel, refine: number, say: (line: string) => void): RefineOptions | undefined {
  if (refine === 0) return undefined;
  const progress = new Progress({ label: 'refine', total: refine, every: 0 });
  return {
    ...refineOptionsOf(loaded.descriptor.training, refine, loaded.descriptor.preprocess.size),
    onStep: (done) => progress.update(done, 'Adam steps on this pair'),
    onDone: (result) => {
      progress.done();
      say(
        `refined the registration in ${refine} ${refine === 1 ? 'step' : 'steps'}: l1 L_smooth + l2 L_sim ` +
          `${result.lossBefore.toFixed(4)} -> ${result.lossAfter.toFixed(4)}`,
      );
    },
  };
}

/**
 * Runs `register`: both scans are preprocessed to the model's grid size,
 * the moving one is aligned affinely onto the fixed one, and the
 * registration branch predicts the deformation. The warped moving scan
 * (and labels) are written on the fixed scan's own grid.
 */
export async function runRegister(
  settings: RegisterSettings,
  say: (line: string) => void,
): Promise<void> {
  checkDistinctOutputs(
    'register',
    { moving: settings.moving, fixed: settings.fixed, 'moving-labels': settings.movingLabels },
    { out: settings.out, flow: settings.flow, 'labels-out': settings.labelsOut },
    settings.model,
  );
  checkOutputSuffix('register', 'out', settings.out, NIFTI_SUFFIXES);
  checkOutputSuffix('register', 'flow', settings.flow, NIFTI_SUFFIXES);
  checkOutputSuffix('register', 'labels-out', settings.labelsOut, NIFTI_SUFFIXES);
  if (settings.movingLabels && !settings.labelsOut) {
    throw new UsageError('register: --moving-labels needs --labels-out, the path of the warped labels', 'register');
  }
  if (settings.labelsOut && !settings.movingLabels) {
    throw new UsageError('register: --labels-out needs --moving-labels, the label map of the moving scan to warp', 'register');
  }
  await checkWritableOutputs('register', { out: settings.out, flow: settings.flow, 'labels-out': settings.labelsOut });
  const info = await ready();
  say(`device: ${info.adapter}`);
  const loaded = await loadModelFolder(settings.model);
  const { size, marginMm, align } = loaded.descriptor.preprocess;
  const owned: Tensor[] = [];
  try {
    const fixedScan = await readScan(settings.fixed, 'register: --fixed');
    const movingScan = await readScan(settings.moving, 'register: --moving');
    const fixed = preprocessImage(fixedScan, { size, marginMm });
    const moving = preprocessImage(movingScan, { size, marginMm });
    // The label map is checked before any output is written.
    const movingLabels = settings.movingLabels ? await readNiftiFile(settings.movingLabels) : null;
    if (movingLabels && settings.movingLabels) {
      checkMovingLabels(settings.movingLabels, movingLabels, movingScan, moving);
    }
    const fixedTensor = volumeTensor(fixed);
    const movingTensor = volumeTensor(moving);
    owned.push(fixedTensor, movingTensor);
    const shape = fixedTensor.shape;
    let matrix: ArrayLike<number> = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0];
    if (align === 'affine') {
      const result = await alignAffine(fixedTensor, movingTensor);
      result.flow.dispose();
      result.warped.dispose();
      matrix = result.matrix;
    }
    const movingAligned = noGrad(() => tidy(() => warp(movingTensor, affineFlow(matrix, shape))));
    owned.push(movingAligned);
    loaded.model.eval();
    const predicted = await registrationFlow(loaded, movingAligned, fixedTensor, settings.refine ?? 0, say);
    owned.push(predicted);
    // The affine and the predicted flow compose into one displacement,
    // so each output is sampled once from the moving scan:
    // warp(warp(m, affine), predicted) = warp(m, total).
    const flow = noGrad(() => tidy(() => composeFlows(affineFlow(matrix, shape), predicted)));
    owned.push(flow);
    // The flow samples the moving scan's preprocessed grid, whose origin
    // and spacing differ from the fixed one's.
    const field = flowToDisplacementField({ data: await flow.toArray(), shape: flow.shape }, fixed, moving);
    // The outputs sample the moving scan itself through the field, so they
    // keep its intensities (and label codes) at the fixed scan's resolution.
    const codes = { sformCode: fixedScan.sformCode, qformCode: fixedScan.qformCode };
    const moved = warpScanThroughField(movingScan, field, fixedScan, 'linear');
    await writeNiftiFile(settings.out, { ...moved, ...codes, description: 'rrl-medsam warped moving' });
    say(`wrote ${settings.out} (the moving scan's intensities on the fixed scan's grid)`);
    if (settings.flow) {
      await writeNiftiFile(settings.flow, field);
      say(`wrote ${settings.flow} (world displacement in mm, fixed to moving, on the preprocessed fixed grid)`);
    }
    if (movingLabels && settings.labelsOut) {
      const movedLabels = warpScanThroughField(movingLabels, field, fixedScan, 'nearest');
      await writeNiftiFile(settings.labelsOut, { ...movedLabels, ...codes }, { labels: true });
      say(`wrote ${settings.labelsOut}`);
    }
  } finally {
    owned.forEach((t) => t.dispose());
    loaded.model.dispose();
  }
}
