// End-to-end test of the demo page (web/, served by scripts/serve-web.ts)
// in headless Chromium. A model folder is trained in Node. The page
// segments an embedded IXI scan with it on its WebGPU adapter
// (SwiftShader), and the result is compared with the CLI's `segment`
// output on lavapipe. The test also covers the viewer's screenshot, both
// in-tab training paths and the page's messages for bad input.
//
// Node-only: it drives Chromium through playwright-core from Node (the
// browser project of vitest.config.ts does not list it). Screenshots and
// timings go to test-artifacts/ (gitignored).

import { existsSync } from 'node:fs';
import {
  copyFile,
  mkdir,
  mkdtemp,
  readFile,
  rm,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { decode } from 'fast-png';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main as runCli } from '../src/cli/main.js';
import { RrlMedSam } from '../src/nn/rrl/model.js';
import { encodeWeights, MODEL_FILES } from '../src/pipeline/model-folder.js';
import { readNifti, writeNifti } from '../src/pipeline/nifti.js';
import { encodePng } from '../src/pipeline/preview.js';
import { createVolume, type Volume } from '../src/pipeline/volume.js';
import { startWebServer, type WebServer } from '../scripts/serve-web.js';

// The part of the page's window.rrlMedsamDemo.state() (web/app.ts) that
// the test reads.
interface DemoState {
  started: boolean;
  adapter: string | null;
  busy: string | null;
  model: { source: string; step: number } | null;
  scan: { name: string; dims: number[] } | null;
  segmentation: { timings: Record<string, number>; refineSteps: number; overlay: string } | null;
  losses: Partial<Record<string, number>>[];
  messages: string[];
}

declare global {
  interface Window {
    rrlMedsamDemo?: { state(): DemoState };
  }
}

const CHROMIUM_PATH = process.env.RRL_MEDSAM_CHROMIUM ?? '/usr/bin/chromium';
const HAS_CHROMIUM = existsSync(CHROMIUM_PATH);

// The flags of the browser project in vitest.config.ts, which explains
// each. The viewer (niivue) also needs WebGL2: with these flags alone,
// Chromium 156 without a GPU renders it on SwiftShader through ANGLE.
const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
];

const ROOT = resolve(import.meta.dirname, '..');
const DATA = join(ROOT, 'data', 'ixi-brain');
const ARTIFACTS = join(ROOT, 'test-artifacts');
const SCAN = 'images/IXI039-HH-1261_t1.nii.gz';
// Refinement steps of the page's segmentation and of the CLI's.
const REFINE_STEPS = 3;

// Measured on SwiftShader on a loaded 2-core machine: a segmentation
// took 10 to 15 s, a training step of the tiny model at 32^3 5 to 10 s.
const GPU_TIMEOUT_MS = 150_000;

let folder: string;
let modelFolder: string;
let otherConfigFolder: string;
let cliLabels: Volume;
let cliWarpedLabels: Volume;
let browser: Browser;
let server: WebServer;
let page: Page;

/** Writes a manifest of the embedded scans with two training scans. */
async function writeSmallManifest(path: string): Promise<void> {
  const embeddedPath = join(DATA, 'manifest.json');
  const embedded = JSON.parse(await readFile(embeddedPath, 'utf8'));
  const absolute = (relative: string) => join(DATA, relative);
  const manifest = {
    atlas: {
      image: absolute(embedded.atlas.image),
      labels: absolute(embedded.atlas.labels),
    },
    train: embedded.train.slice(0, 2).map(absolute),
    test: [],
    structures: absolute(embedded.structures),
  };
  await writeFile(path, JSON.stringify(manifest));
}

/**
 * Copies the model folder, replacing its weights by those of a model of
 * another config (the cpu preset) with the same classes.
 */
async function writeOtherConfigFolder(
  source: string,
  out: string,
): Promise<void> {
  await mkdir(out);
  const copied = [
    MODEL_FILES.descriptor,
    MODEL_FILES.atlas,
    MODEL_FILES.atlasLabels,
  ];
  for (const name of copied) {
    await copyFile(join(source, name), join(out, name));
  }
  const descriptorPath = join(source, MODEL_FILES.descriptor);
  const descriptor = JSON.parse(await readFile(descriptorPath, 'utf8'));
  const numClasses = descriptor.config.numClasses;
  const other = new RrlMedSam({ preset: 'cpu', numClasses });
  try {
    const weights = await encodeWeights(other, 0);
    await writeFile(join(out, MODEL_FILES.weights), weights);
  } finally {
    other.dispose();
  }
}

/** Writes the bad inputs of the message tests; returns their paths. */
async function writeBadInputs(out: string) {
  const paths = {
    text: join(out, 'notes.nii'),
    slice: join(out, 'slice-2d.nii.gz'),
    picture: join(out, 'photo.png'),
    nan: join(out, 'nan-voxels.nii.gz'),
    zeroSpacing: join(out, 'zero-spacing.nii'),
  };
  await writeFile(paths.text, 'scan notes: patient 12, T1, 2 mm\n'.repeat(20));
  const ramp = new Float32Array(64 * 64).map((_, i) => i % 64);
  const slice = createVolume(ramp, [64, 64, 1]);
  await writeFile(paths.slice, writeNifti(slice, { gzip: true }));
  const pixels = new Uint8Array(16 * 16 * 4).map((_, i) => (i * 37) % 256);
  const png = encodePng({ width: 16, height: 16, data: pixels });
  await writeFile(paths.picture, png);
  const values = new Float32Array(8 * 9 * 10).map((_, i) => i % 7);
  values[3 + 8 * (4 + 9 * 5)] = NaN;
  values[100] = NaN;
  await writeFile(paths.nan, writeNifti(createVolume(values, [8, 9, 10]), { gzip: true }));
  // A header with a zero voxel size and neither qform nor sform: the
  // reader takes 1 mm and warns.
  const texture = new Float32Array(16 * 16 * 16).map((_, i) => (i * 7919) % 13);
  const header = writeNifti(createVolume(texture, [16, 16, 16]), { gzip: false });
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  view.setFloat32(80, 0, true); // pixdim[1]
  view.setInt16(252, 0, true); // qform_code
  view.setInt16(254, 0, true); // sform_code
  await writeFile(paths.zeroSpacing, header);
  return paths;
}

let badInputs: Awaited<ReturnType<typeof writeBadInputs>>;

async function openPage(url: string): Promise<Page> {
  const viewport = { width: 1280, height: 900 };
  const opened = await browser.newPage({ viewport });
  opened.on('pageerror', (error) => {
    console.error(`page error: ${error.message}`);
  });
  await opened.goto(url);
  await opened.waitForFunction(
    () => window.rrlMedsamDemo?.state().started,
    null,
    { timeout: 60_000 },
  );
  return opened;
}

function pageState(target: Page) {
  return target.evaluate(() => window.rrlMedsamDemo!.state());
}

/** Waits until the page is idle (no task running). */
async function waitIdle(target: Page): Promise<void> {
  await target.waitForFunction(
    () => window.rrlMedsamDemo!.state().busy === null,
    null,
    { timeout: GPU_TIMEOUT_MS },
  );
}

/** Waits for the visible message box with `code`; returns its text. */
async function messageText(target: Page, code: string): Promise<string> {
  const box = target.locator(`#messages .message[data-code="${code}"]`);
  await box.waitFor({ state: 'visible', timeout: 30_000 });
  return (await box.textContent()) ?? '';
}

/** Variance of the luminance of a PNG's pixels (0..255 scale). */
function luminanceVariance(png: Uint8Array): number {
  const image = decode(png);
  const channels = image.channels;
  const values: number[] = [];
  for (let i = 0; i < image.width * image.height; i++) {
    const [r, g, b] = [0, 1, 2].map((c) =>
      Number(image.data[i * channels + c]),
    );
    values.push(0.299 * r + 0.587 * g + 0.114 * b);
  }
  const mean = values.reduce((sum, v) => sum + v, 0) / values.length;
  return values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / values.length;
}

const title = HAS_CHROMIUM
  ? 'web demo in headless chromium'
  : `web demo: skipped, no Chromium at ${CHROMIUM_PATH} ` +
    '(apt-get install chromium, or set RRL_MEDSAM_CHROMIUM)';

describe.skipIf(!HAS_CHROMIUM)(title, () => {
  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'rrl-medsam-web-'));
    const manifest = join(folder, 'manifest.json');
    await writeSmallManifest(manifest);
    modelFolder = join(folder, 'model');
    // Through the CLI's own flag parsing, as a user runs train and segment.
    const trained = await runCli([
      'train',
      ...['--manifest', manifest, '--out', modelFolder],
      ...['--size', '32', '--preset', 'tiny', '--steps', '2'],
      ...['--variant', 'baseline', '--cache', join(folder, 'cache')],
    ]);
    expect(trained).toBe(0);
    const cliOut = join(folder, 'cli-labels.nii.gz');
    const cliWarpedOut = join(folder, 'cli-warped-labels.nii.gz');
    const segmented = await runCli([
      'segment',
      ...['--model', modelFolder, '--input', join(DATA, SCAN)],
      ...['--out', cliOut, '--warped-labels', cliWarpedOut],
      ...['--refine', String(REFINE_STEPS)],
    ]);
    expect(segmented).toBe(0);
    cliLabels = readNifti(new Uint8Array(await readFile(cliOut)));
    cliWarpedLabels = readNifti(new Uint8Array(await readFile(cliWarpedOut)));
    otherConfigFolder = join(folder, 'other-config');
    await writeOtherConfigFolder(modelFolder, otherConfigFolder);
    badInputs = await writeBadInputs(folder);
    await mkdir(ARTIFACTS, { recursive: true });
    server = await startWebServer({ model: modelFolder });
    browser = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      args: CHROMIUM_FLAGS,
    });
    page = await openPage(server.url);
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (folder) await rm(folder, { recursive: true, force: true });
  });

  it('segments a scan as the cli does', async () => {
    const started = await pageState(page);
    expect(started.adapter).toBeTruthy();
    expect(started.model?.source).toContain(modelFolder);
    await page.selectOption('#scan-list', SCAN);
    await page.click('#scan-load');
    await waitIdle(page);
    expect((await pageState(page)).scan?.dims).toEqual([120, 120, 90]);

    // Records each text the segmentation status shows while it runs.
    await page.evaluate(() => {
      const status = document.getElementById('segment-status')!;
      const seen: string[] = [];
      (window as unknown as { statusTexts: string[] }).statusTexts = seen;
      new MutationObserver(() => seen.push(status.textContent ?? '')).observe(status, {
        childList: true,
        characterData: true,
        subtree: true,
      });
    });
    await page.fill('#refine-steps', String(REFINE_STEPS));
    await page.click('#segment');
    await waitIdle(page);
    const state = await pageState(page);
    expect(state.messages).toEqual([]);
    expect(state.segmentation).not.toBeNull();
    expect(state.segmentation!.refineSteps).toBe(REFINE_STEPS);
    const statuses = await page.evaluate(() => (window as unknown as { statusTexts: string[] }).statusTexts);
    const parts = statuses.filter((text) => text.startsWith('Step ')).map((text) => text.slice(0, 11));
    expect([...new Set(parts)]).toEqual(['Step 1 of 3', 'Step 2 of 3', 'Step 3 of 3']);
    const refining = statuses.filter((text) => text.includes('refining the registration'));
    expect(refining.at(-1)).toContain(`step ${REFINE_STEPS} of ${REFINE_STEPS}`);
    expect(await page.textContent('#segment-status')).toContain(
      `the atlas labels were warped with the registration's field, refined by ${REFINE_STEPS} steps.`,
    );

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.click('#download-labels'),
    ]);
    expect(download.suggestedFilename()).toBe(
      'IXI039-HH-1261_t1_labels.nii.gz',
    );
    const downloaded = await readFile(await download.path());
    const pageLabels = readNifti(new Uint8Array(downloaded));
    expect(pageLabels.dims).toEqual(cliLabels.dims);
    const scan = readNifti(new Uint8Array(await readFile(join(DATA, SCAN))));
    for (let i = 0; i < 16; i++) {
      expect(pageLabels.affine[i]).toBeCloseTo(scan.affine[i], 4);
      expect(pageLabels.affine[i]).toBeCloseTo(cliLabels.affine[i], 6);
    }
    let same = 0;
    for (let i = 0; i < pageLabels.data.length; i++) {
      if (pageLabels.data[i] === cliLabels.data[i]) same += 1;
    }
    const agreement = same / pageLabels.data.length;
    expect(agreement).toBeGreaterThan(0.999);

    const [warpedDownload] = await Promise.all([
      page.waitForEvent('download'),
      page.click('#download-warped-labels'),
    ]);
    expect(warpedDownload.suggestedFilename()).toBe('IXI039-HH-1261_t1_warped-atlas-labels.nii.gz');
    const pageWarped = readNifti(new Uint8Array(await readFile(await warpedDownload.path())));
    expect(pageWarped.dims).toEqual(cliWarpedLabels.dims);
    let sameWarped = 0;
    for (let i = 0; i < pageWarped.data.length; i++) {
      if (pageWarped.data[i] === cliWarpedLabels.data[i]) sameWarped += 1;
    }
    // The refinement follows the sign of gradients near 0 at its first
    // Adam step, where SwiftShader and lavapipe may round apart.
    const warpedAgreement = sameWarped / pageWarped.data.length;
    expect(warpedAgreement).toBeGreaterThan(0.99);

    await writeFile(
      join(ARTIFACTS, 'web-demo-timings.json'),
      JSON.stringify(
        {
          adapter: state.adapter,
          timings: state.segmentation!.timings,
          agreement,
          warpedAgreement,
        },
        null,
        2,
      ),
    );
  }, GPU_TIMEOUT_MS);

  it('shows a non-blank viewer', async () => {
    // Gives niivue time to draw the volumes it loaded last.
    await page.waitForTimeout(500);
    const png = await page.locator('#viewer-box').screenshot({
      path: join(ARTIFACTS, 'web-demo-viewer.png'),
    });
    await page.screenshot({
      path: join(ARTIFACTS, 'web-demo-page.png'),
      fullPage: true,
    });
    expect(luminanceVariance(png)).toBeGreaterThan(100);
  });

  it('overlay switches to atlas labels', async () => {
    const final = await page.locator('#viewer-box').screenshot();
    await page.selectOption('#overlay', 'atlas');
    await waitIdle(page);
    expect((await pageState(page)).segmentation?.overlay).toBe('atlas');
    await page.waitForTimeout(500);
    const atlas = await page.locator('#viewer-box').screenshot({
      path: join(ARTIFACTS, 'web-demo-viewer-atlas.png'),
    });
    expect(luminanceVariance(atlas)).toBeGreaterThan(100);
    expect(Buffer.compare(atlas, final)).not.toBe(0);
    await page.selectOption('#overlay', 'final');
  });

  it('fine-tunes the registration and plots the loss', async () => {
    await page.fill('#train-steps', '1');
    await page.click('#train-registration');
    await waitIdle(page);
    const state = await pageState(page);
    expect(state.messages).toEqual([]);
    expect(state.losses).toHaveLength(1);
    expect(Number.isFinite(state.losses[0].registration)).toBe(true);
    const status = await page.textContent('#train-status');
    expect(status).toContain('Fine-tuned 1 iterations');
    // The plot with its value and iteration ranges, for a reader to look at.
    const plot = await page.locator('#loss-plot').screenshot({ path: join(ARTIFACTS, 'web-demo-losses.png') });
    expect(luminanceVariance(plot)).toBeGreaterThan(10);
  }, GPU_TIMEOUT_MS);

  it('never fetches a picked file by its name', async () => {
    // niivue fetched names it could not place: upper case, or one that reads as a URL.
    const requested: string[] = [];
    const track = (request: { url(): string }) => requested.push(request.url());
    page.on('request', track);
    try {
      for (const name of ['UPPER.NII.GZ', 'https:example.invalid']) {
        const copy = join(folder, name);
        await copyFile(join(DATA, SCAN), copy);
        await page.setInputFiles('#scan-file', copy);
        await waitIdle(page);
        const state = await pageState(page);
        expect(state.messages, name).toEqual([]);
        expect(state.scan?.dims, name).toEqual([120, 120, 90]);
      }
    } finally {
      page.off('request', track);
    }
    expect(requested.filter((url) => /UPPER|example\.invalid/i.test(url))).toEqual([]);
  });

  it('rejects a file that is not nifti', async () => {
    await page.setInputFiles('#scan-file', badInputs.text);
    const text = await messageText(page, 'not-nifti');
    expect(text).toContain('notes.nii');
    expect(text).toContain('not a NIfTI file');
    expect((await pageState(page)).scan).toBeNull();
  });

  it('rejects a 2d nifti slice', async () => {
    await page.setInputFiles('#scan-file', badInputs.slice);
    const text = await messageText(page, '2d-image');
    expect(text).toContain('slice-2d.nii.gz: a 2D image, not a 3D scan');
    expect(text).toContain('64 x 64 x 1');
  });

  it('states a repaired voxel size', async () => {
    await page.setInputFiles('#scan-file', badInputs.zeroSpacing);
    await waitIdle(page);
    const status = await page.textContent('#scan-status');
    expect(status).toContain('zero-spacing.nii: 16 x 16 x 16 voxels at 1.00 x 1.00 x 1.00 mm.');
    // The file has no sform or qform either, so the page names that first.
    expect(status).toContain('Header: sform_code and qform_code are 0, so the file gives no orientation');
    expect(status).toContain('pixdim[1] is 0; using 1 mm.');
  });

  it('rejects a scan with nan voxels', async () => {
    await page.setInputFiles('#scan-file', badInputs.nan);
    const text = await messageText(page, 'bad-intensities');
    expect(text).toContain('nan-voxels.nii.gz: 2 voxels are not finite numbers');
    expect(text).toContain('voxel (4, 3, 1), holds NaN');
    expect(await page.textContent('#scan-status')).toBe('No scan loaded.');
    // The segmentation of the previous scan is no longer shown.
    expect(await page.textContent('#segment-status')).toBe('');
    expect(await page.isHidden('#timings')).toBe(true);
    expect(await page.isDisabled('#download-labels')).toBe(true);
  });

  it('rejects a png picture dropped on the page', async () => {
    // A drop event as a drag from the desktop delivers it.
    const bytes = [...(await readFile(badInputs.picture))];
    const transfer = await page.evaluateHandle((values) => {
      const data = new DataTransfer();
      const file = new File([new Uint8Array(values)], 'photo.png');
      data.items.add(file);
      return data;
    }, bytes);
    await page.dispatchEvent('#scan-drop', 'drop', { dataTransfer: transfer });
    const text = await messageText(page, '2d-image');
    expect(text).toContain('photo.png: a 2D picture, not a 3D scan');
    expect(text).toContain('PNG image');
  });

  it('rejects weights of another model config', async () => {
    const names = [
      MODEL_FILES.descriptor,
      MODEL_FILES.weights,
      MODEL_FILES.atlas,
      MODEL_FILES.atlasLabels,
    ];
    const paths = names.map((name) => join(otherConfigFolder, name));
    await page.setInputFiles('#model-files', paths);
    const text = await messageText(page, 'model-config');
    expect(text).toContain('the weights belong to another model config');
    expect(text).toContain('encoderChannels');
    // The model served by the server stays loaded.
    expect((await pageState(page)).model?.source).toContain(modelFolder);
  });

  it('says when the browser has no webgpu', async () => {
    const context = await browser.newContext();
    try {
      await context.addInitScript(() => {
        Object.defineProperty(Navigator.prototype, 'gpu', {
          get: () => undefined,
        });
      });
      const bare = await context.newPage();
      await bare.goto(server.url);
      const text = await messageText(bare, 'no-webgpu');
      expect(text).toContain('WebGPU is not available');
      expect(text).toContain('navigator.gpu');
      expect(await bare.textContent('#adapter')).toBe('none');
      expect(await bare.isDisabled('#segment')).toBe(true);
    } finally {
      await context.close();
    }
  });

  it('offers a quick model without a model folder', async () => {
    const bareServer = await startWebServer({ model: null });
    const fresh = await openPage(bareServer.url);
    try {
      const notice = await messageText(fresh, 'no-model');
      expect(notice).toContain('train a quick model in this tab');
      expect((await pageState(fresh)).model).toBeNull();
      expect(await fresh.isEnabled('#train-quick')).toBe(true);
    } finally {
      await fresh.close();
      await bareServer.close();
    }
  });

  // Runs on the first page, whose device has already compiled most of the
  // training kernels (SwiftShader compiles each pipeline anew per device).
  it('trains a quick model in the tab', async () => {
    await page.fill('#quick-steps', '1');
    await page.fill('#quick-scans', '1');
    await page.click('#train-quick');
    await waitIdle(page);
    const state = await pageState(page);
    expect(state.messages).toEqual([]);
    expect(state.model?.source).toBe(
      'trained in this tab (2 iterations on 1 scan)',
    );
    expect(state.losses).toHaveLength(2);
    expect(Number.isFinite(state.losses[1].registration)).toBe(true);

    // The model downloads as a zip of its folder, which loads again.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.click('#download-model'),
    ]);
    expect(download.suggestedFilename()).toBe('rrl-medsam-model.zip');
    const zipPath = join(folder, 'rrl-medsam-model.zip');
    await download.saveAs(zipPath);
    // The download starts before the packing task ends, and a file picked
    // while the page is busy is not loaded.
    await waitIdle(page);
    await page.setInputFiles('#model-files', zipPath);
    await waitIdle(page);
    const reloaded = await pageState(page);
    expect(reloaded.messages).toEqual([]);
    expect(reloaded.model?.source).toBe('dropped model folder');
    expect(reloaded.model?.step).toBe(2);
  }, GPU_TIMEOUT_MS);
});
