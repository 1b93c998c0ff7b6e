// The demo page's state and actions: loading a model and a scan,
// segmenting on the GPU, fine-tuning, training a quick model, downloads.
// main.ts wires the page's controls to these methods.

import { deviceInfo, ready } from '../src/device.js';
import {
  segmentScan,
  type SegmentationStage,
  type SegmentationResult,
} from '../src/pipeline/experiment.js';
import { writeNifti } from '../src/pipeline/nifti-write.js';
import { refineOptionsOf } from '../src/pipeline/refine.js';
import type { StepResult } from '../src/pipeline/train/index.js';
import { FINE_TUNE_SERIES, fineTuneRegistration } from './fine-tune.js';
import {
  collectModelFiles,
  downloadBytes,
  fetchRequired,
  zipFiles,
  type NamedBytes,
} from './files.js';
import { LossPlot } from './loss-plot.js';
import {
  clearMessage,
  clearMessages,
  reportError,
  showMessage,
} from './messages.js';
import {
  decodeModelFiles,
  encodeModelFolder,
  loadServedModel,
  trainQuickModel,
  type PageModel,
} from './model.js';
import { readScan, type LoadedScan } from './scan.js';
import { Viewer } from './viewer.js';

/** The page's state as plain data, exposed on window for tests. */
export interface DemoState {
  /** True once start() has finished, successfully or not. */
  started: boolean;
  adapter: string | null;
  busy: string | null;
  model: {
    source: string;
    classes: number;
    grid: number;
    step: number;
  } | null;
  scan: { name: string; dims: number[] } | null;
  segmentation: {
    timings: SegmentationResult['timings'];
    structuresFound: number;
    dims: number[];
    /** Refinement steps of the field that warped the atlas labels. */
    refineSteps: number;
    /** The label map the viewer shows over the scan. */
    overlay: Overlay;
  } | null;
  /** Loss values plotted in the last training run, one entry per step. */
  losses: Partial<Record<string, number>>[];
  /** Codes of the messages on the page, such as "not-nifti". */
  messages: string[];
}

/** The final segmentation (yhat_m) or the atlas labels warped onto the scan. */
type Overlay = 'final' | 'atlas';

interface Segmentation {
  scanName: string;
  labels: Uint8Array;
  warped: Uint8Array;
  warpedLabels: Uint8Array;
  summary: Omit<NonNullable<DemoState['segmentation']>, 'overlay'>;
}

/** Loss terms plotted while a quick model trains (both stages log them). */
const QUICK_SERIES = [
  { key: 'registration', title: 'L_reg' },
  { key: 'medicalSegmentation', title: 'L_seg (medical branch)' },
  { key: 'generalSegmentation', title: 'L_seg (general branch)' },
];

function element<T extends HTMLElement>(id: string): T {
  return document.getElementById(id) as T;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

function stem(name: string): string {
  return name.replace(/\.nii(\.gz)?$/i, '');
}

export class DemoApp {
  private started = false;
  private adapter: string | null = null;
  private model: PageModel | null = null;
  private scan: LoadedScan | null = null;
  private result: Segmentation | null = null;
  private busy: string | null = null;
  /** Picked or dropped files still being read, before their task starts. */
  private reads = 0;
  /** Overlay switches whose viewer update has not finished. */
  private overlaySwitches = 0;
  private stopping = false;
  private losses: Partial<Record<string, number>>[] = [];
  private readonly plot = new LossPlot(element('loss-plot'));
  private readonly viewer = new Viewer(element('viewer'), (text) => {
    element('viewer-location').textContent = text;
  });

  /** Returns the running task, or the file reads and overlay updates in progress. */
  private activity(): string | null {
    if (this.busy) return this.busy;
    if (this.reads > 0) return 'reading files';
    if (this.overlaySwitches > 0) return 'drawing the overlay';
    return null;
  }

  /** Returns the state as plain data. */
  state(): DemoState {
    const model = this.model;
    return {
      started: this.started,
      adapter: this.adapter,
      // Files being read count as busy, so a caller that waits for idle
      // does not return between a pick and the task it starts.
      busy: this.activity(),
      model: model && {
        source: model.source,
        classes: model.descriptor.labels.length,
        grid: model.descriptor.preprocess.size,
        step: model.descriptor.step,
      },
      scan: this.scan && {
        name: this.scan.name,
        dims: [...this.scan.volume.dims],
      },
      segmentation: this.result && { ...this.result.summary, overlay: this.overlay() },
      losses: [...this.losses],
      messages: [
        ...document.querySelectorAll<HTMLElement>('#messages .message'),
      ].map((box) => box.dataset.code ?? ''),
    };
  }

  /** Acquires the GPU and looks for a served model folder. */
  async start(): Promise<void> {
    try {
      this.adapter = (await ready()).adapter;
      element('adapter').textContent = this.adapter;
    } catch (error) {
      element('adapter').textContent = 'none';
      reportError(error, 'WebGPU');
    }
    this.busy = 'loading the served model';
    this.refresh();
    try {
      const served = this.adapter ? await loadServedModel() : null;
      if (served) this.setModel(served);
      else if (this.adapter) this.noModelNotice();
      else element('model-status').textContent = 'No model loaded: this browser has no WebGPU.';
    } catch (error) {
      element('model-status').textContent = 'No model loaded: the served folder failed to load.';
      reportError(error, 'Served model folder');
    } finally {
      this.busy = null;
      this.started = true;
      this.refresh();
    }
  }

  private noModelNotice(): void {
    element('model-status').textContent = 'No model loaded.';
    showMessage(
      'info',
      'no-model',
      'No model folder found',
      'The server serves no model folder (start it with `npm run web -- ' +
        '--model DIR`, or run `npm run demo` to write runs/demo/model). Drop ' +
        "a model folder's files here, or train a quick model in this tab on " +
        'the embedded IXI scans with the button under "1. Model folder".',
    );
  }

  private setModel(model: PageModel): void {
    this.model?.model.dispose();
    this.model = model;
    clearMessage('no-model');
    this.showModelStatus();
    if (this.result && this.scan) {
      // The overlay came from the previous model: show the scan alone.
      this.clearSegmentation();
      this.viewer
        .show(this.scan)
        .catch((error) => reportError(error, 'Viewer'));
    }
  }

  private showModelStatus(): void {
    const model = this.model!;
    const { descriptor } = model;
    const structures = descriptor.labels.length - 1;
    element('model-status').textContent =
      `Model ${descriptor.config.name}, ${structures} structures, ` +
      `${descriptor.preprocess.size}^3 grid, ${descriptor.step} ` +
      `iterations, ${descriptor.training.variant} variant; ${model.source}.`;
  }

  /** Returns `reading` once it settles, counting it as busy in state() meanwhile. */
  async readingFiles<T>(reading: Promise<T>): Promise<T> {
    this.reads += 1;
    try {
      return await reading;
    } finally {
      this.reads -= 1;
    }
  }

  /** Runs `task` unless another one is running, reporting its errors. */
  private async run(
    name: string,
    context: string,
    task: () => Promise<void>,
  ): Promise<void> {
    if (this.busy) {
      // File inputs and drop zones stay enabled, so a message explains why nothing happens.
      clearMessage('busy');
      showMessage('info', 'busy', `${context}: not started`, `The page is ${this.busy}; try again when that has finished.`);
      return;
    }
    clearMessages(['no-webgpu', 'no-model']);
    this.busy = name;
    this.stopping = false;
    this.refresh();
    try {
      await task();
    } catch (error) {
      reportError(error, context);
    } finally {
      this.busy = null;
      this.refresh();
    }
  }

  /** Enables the controls that fit the current state. */
  refresh(): void {
    const idle = this.busy === null;
    const gpu = this.adapter !== null;
    const set = (id: string, enabled: boolean) => {
      element<HTMLButtonElement>(id).disabled = !enabled;
    };
    const pair = this.model !== null && this.scan !== null;
    set('segment', idle && gpu && pair);
    set('train-registration', idle && gpu && pair);
    set('train-quick', idle && gpu);
    set('train-stop', this.busy === 'training');
    set('scan-load', idle);
    set('download-labels', this.result !== null);
    set('download-warped', this.result !== null);
    set('download-warped-labels', this.result !== null);
    set('download-model', idle && this.model !== null);
    document.body.dataset.busy = this.busy ?? '';
  }

  /** Loads a scan from file bytes and shows it. */
  loadScan(file: NamedBytes): Promise<void> {
    return this.run('loading the scan', `Scan ${file.name}`, () =>
      this.showScan(file),
    );
  }

  /**
   * Loads one of the embedded IXI scans from the server. The fetch runs
   * inside the task, so the page is busy from the click on.
   */
  loadEmbeddedScan(path: string): Promise<void> {
    return this.run('loading the scan', `Scan ${path}`, async () => {
      const bytes = await fetchRequired(`/data/${path}`);
      await this.showScan({ name: path.split('/').pop()!, bytes });
    });
  }

  private async showScan(file: NamedBytes): Promise<void> {
    this.scan = null;
    this.clearSegmentation();
    element('scan-status').textContent = `Reading ${file.name}…`;
    try {
      this.scan = readScan(file.name, file.bytes);
    } catch (error) {
      element('scan-status').textContent = 'No scan loaded.';
      throw error;
    }
    const { dims, spacing, warnings } = this.scan.volume;
    // Header repairs (a zero voxel size read as 1 mm, a broken sform) change
    // the geometry the result is placed with, so the page states them.
    const repairs = warnings && warnings.length > 0 ? ` Header: ${warnings.join('; ')}.` : '';
    element('scan-status').textContent =
      `${file.name}: ${dims.join(' x ')} voxels at ` +
      `${spacing.map((mm) => mm.toFixed(2)).join(' x ')} mm.${repairs}`;
    element('viewer-placeholder').hidden = true;
    await this.viewer.show(this.scan);
  }

  /** Decodes dropped model-folder files (or a .zip of the folder). */
  loadModel(files: NamedBytes[]): Promise<void> {
    return this.run('loading the model', 'Model folder', async () => {
      const collected = collectModelFiles(files);
      this.setModel(decodeModelFiles('dropped model folder', collected));
    });
  }

  /**
   * Segments the loaded scan, warps the atlas labels onto it with the
   * field refined by `refineSteps` Adam steps, and shows the chosen labels
   * over it.
   */
  segment(refineSteps: number): Promise<void> {
    return this.run('segmenting', 'Segmentation', async () => {
      const model = this.model!;
      const scan = this.scan!;
      this.clearSegmentation();
      // The downloads of the previous result end here, not when the task does.
      this.refresh();
      const stages: Record<SegmentationStage, string> = {
        align: 'Step 1 of 3: preprocessing the scan and fitting the affine alignment…',
        inference: 'Step 2 of 3: running both branches…',
        resample: "Step 3 of 3: resampling the labels onto the scan's grid…",
      };
      const { descriptor } = model;
      const ids = descriptor.labels.map((entry) => entry.id);
      const status = element('segment-status');
      let result: Awaited<ReturnType<typeof segmentScan>>;
      try {
        const refine =
          refineSteps > 0
            ? {
                ...refineOptionsOf(descriptor.training, refineSteps, descriptor.preprocess.size),
                onStep: (done: number, steps: number) => {
                  status.textContent = `${stages.inference} refining the registration, step ${done} of ${steps}…`;
                },
              }
            : undefined;
        result = await segmentScan(
          model.model,
          model.atlas,
          descriptor.preprocess,
          scan.volume,
          ids,
          (stage) => {
            status.textContent = stages[stage];
          },
          { warpedLabels: true, refine },
        );
      } catch (error) {
        element('segment-status').textContent =
          `Segmentation of ${scan.name} failed; the error message at the top of the page says why.`;
        throw error;
      }
      const found = new Set(result.labels.data);
      found.delete(0);
      this.result = {
        scanName: scan.name,
        labels: writeNifti(result.labels, { gzip: true, labels: true }),
        warped: writeNifti(result.warpedAtlas, { gzip: true }),
        warpedLabels: writeNifti(result.warpedLabels!, { gzip: true, labels: true }),
        summary: {
          timings: result.timings,
          structuresFound: found.size,
          dims: [...result.labels.dims],
          refineSteps,
        },
      };
      this.showTimings(result.timings, deviceInfo().adapter);
      const refined = refineSteps > 0 ? `, refined by ${refineSteps} ${refineSteps === 1 ? 'step' : 'steps'}` : '';
      status.textContent =
        `${found.size} of ${ids.length - 1} structures found in ${scan.name}; ` +
        `the atlas labels were warped with the registration's field${refined}.`;
      await this.showOverlay();
    });
  }

  /** Returns the overlay chosen on the page. */
  private overlay(): Overlay {
    return element<HTMLSelectElement>('overlay').value === 'atlas' ? 'atlas' : 'final';
  }

  /** Shows the chosen label map over the scan (nothing before a segmentation). */
  async showOverlay(): Promise<void> {
    if (!this.result || !this.scan || !this.model) return;
    const bytes = this.overlay() === 'atlas' ? this.result.warpedLabels : this.result.labels;
    this.overlaySwitches += 1;
    try {
      await this.viewer.show(this.scan, { bytes, entries: this.model.descriptor.labels });
    } catch (error) {
      reportError(error, 'Viewer');
    } finally {
      this.overlaySwitches -= 1;
    }
  }

  /** Clears the shown segmentation: its result, status line and timings. */
  private clearSegmentation(): void {
    this.result = null;
    element('segment-status').textContent = '';
    element('timings').hidden = true;
  }

  private showTimings(
    timings: SegmentationResult['timings'],
    adapter: string,
  ): void {
    element('timings').hidden = false;
    element('time-preprocess').textContent = seconds(timings.preprocess);
    element('time-inference').textContent = seconds(timings.inference);
    element('time-total').textContent = seconds(timings.total);
    element('timings').title = `measured on ${adapter}`;
  }

  /** Starts a new loss plot; returns the step hook that feeds it. */
  private startPlot(
    series: { key: string; title: string }[],
  ): (result: StepResult, total: number) => void {
    this.losses = [];
    this.plot.reset(series);
    return (result, total) => {
      element('train-status').textContent =
        `iteration ${result.iteration} of ${total} (stage ${result.stage}), ` +
        `${result.seconds.toFixed(2)} s`;
      if (!result.losses) return;
      this.losses.push(result.losses);
      this.plot.add(result.iteration, result.losses);
    };
  }

  /** Fine-tunes the registration on the loaded pair, plotting the losses. */
  fineTune(iterations: number): Promise<void> {
    return this.run('training', 'Fine-tuning', async () => {
      const step = this.startPlot(FINE_TUNE_SERIES);
      const status = (text: string) => {
        element('train-status').textContent = text;
      };
      const model = this.model!;
      const scan = this.scan!;
      const done = await fineTuneRegistration(model, scan.volume, iterations, {
        status,
        step,
        stopRequested: () => this.stopping,
      });
      model.source += `, fine-tuned ${done} iterations on ${scan.name}`;
      this.showModelStatus();
      status(
        `Fine-tuned ${done} iterations; segment again to use the new weights.`,
      );
    });
  }

  /** Trains a quick model on the embedded scans and loads it. */
  trainQuick(steps: number, scanCount: number): Promise<void> {
    return this.run('training', 'Quick model training', async () => {
      const step = this.startPlot(QUICK_SERIES);
      const status = (text: string) => {
        element('train-status').textContent = `Quick model: ${text}`;
      };
      const trained = await trainQuickModel(steps, scanCount, {
        status,
        step,
        stopRequested: () => this.stopping,
      });
      this.setModel(trained);
      status(
        `done after ${trained.descriptor.step} iterations; load a scan and ` +
          'segment it.',
      );
    });
  }

  /** Asks the running training to stop after its current step. */
  stop(): void {
    this.stopping = true;
  }

  /** Downloads the label map on the scan's grid and affine. */
  downloadLabels(): void {
    if (!this.result) return;
    const name = `${stem(this.result.scanName)}_labels.nii.gz`;
    downloadBytes(name, this.result.labels);
  }

  /** Downloads the atlas image warped onto the scan's grid. */
  downloadWarped(): void {
    if (!this.result) return;
    const name = `${stem(this.result.scanName)}_warped-atlas.nii.gz`;
    downloadBytes(name, this.result.warped);
  }

  /** Downloads the atlas labels warped onto the scan's grid. */
  downloadWarpedLabels(): void {
    if (!this.result) return;
    const name = `${stem(this.result.scanName)}_warped-atlas-labels.nii.gz`;
    downloadBytes(name, this.result.warpedLabels);
  }

  /** Downloads the loaded model as a zip of its model folder. */
  downloadModel(): Promise<void> {
    return this.run('packing the model', 'Model download', async () => {
      const files = await encodeModelFolder(this.model!);
      const zip = zipFiles('rrl-medsam-model', files);
      downloadBytes('rrl-medsam-model.zip', zip);
    });
  }
}
