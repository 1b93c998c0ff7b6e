// Entry point of the demo page (bundled by scripts/serve-web.ts): wires
// the controls and drop zones to DemoApp, lists the embedded IXI scans
// and starts the GPU. Tests read the page's state from
// window.rrlMedsamDemo.state().

import { DemoApp, type DemoState } from './app.js';
import {
  droppedFiles,
  fetchBytes,
  fileBytes,
  type NamedBytes,
} from './files.js';
import { reportError } from './messages.js';

declare global {
  interface Window {
    rrlMedsamDemo?: { state(): DemoState };
  }
}

function element<T extends HTMLElement>(id: string): T {
  return document.getElementById(id) as T;
}

/**
 * Reads the value of a number input, clamped to its min and max. An empty
 * or unreadable entry gives the input's default (its value attribute).
 */
function numberInput(id: string): number {
  const input = element<HTMLInputElement>(id);
  const text = input.value.trim();
  const value = text === '' ? NaN : Math.round(Number(text));
  const [min, max] = [Number(input.min), Number(input.max)];
  const finite = Number.isFinite(value) ? value : Number(input.defaultValue);
  const clamped = Math.min(max, Math.max(min, finite));
  input.value = String(clamped);
  return clamped;
}

/**
 * Calls `onFiles` with the files dropped on, or picked in, a zone. The
 * page counts as busy while it reads them (DemoApp.readingFiles).
 */
function dropZone(
  app: DemoApp,
  zoneId: string,
  inputIds: string[],
  onFiles: (files: NamedBytes[]) => Promise<void>,
): void {
  const zone = element(zoneId);
  const take = async (files: File[]) => {
    if (files.length === 0) return;
    await onFiles(await app.readingFiles(Promise.all(files.map(fileBytes))));
  };
  zone.addEventListener('dragover', (event) => {
    event.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('over');
    if (!event.dataTransfer) return;
    app
      .readingFiles(droppedFiles(event.dataTransfer))
      .then(take)
      .catch((error) => reportError(error, 'Drop'));
  });
  for (const id of inputIds) {
    const input = element<HTMLInputElement>(id);
    input.addEventListener('change', () => {
      const files = [...(input.files ?? [])];
      // Clearing the value lets the same file be picked again.
      input.value = '';
      take(files).catch((error) => reportError(error, 'File input'));
    });
  }
}

/** Fills the scan list from the embedded manifest (atlas, train, test). */
async function listEmbeddedScans(): Promise<void> {
  const select = element<HTMLSelectElement>('scan-list');
  const bytes = await fetchBytes('/data/manifest.json');
  if (!bytes) {
    select.append(new Option('no embedded scans on this server', ''));
    return;
  }
  const manifest = JSON.parse(new TextDecoder().decode(bytes)) as {
    atlas: { image: string };
    train: string[];
    test: { image: string }[];
  };
  const scans = element<HTMLInputElement>('quick-scans');
  scans.max = String(manifest.train.length);
  scans.value = String(manifest.train.length);
  const groups: [string, string[]][] = [
    ['held-out test scans', manifest.test.map((scan) => scan.image)],
    ['training scans', manifest.train],
    ['atlas', [manifest.atlas.image]],
  ];
  for (const [label, paths] of groups) {
    const group = document.createElement('optgroup');
    group.label = label;
    for (const path of paths) {
      group.append(new Option(path.split('/').pop()!, path));
    }
    select.append(group);
  }
}

function wire(app: DemoApp): void {
  dropZone(app, 'scan-drop', ['scan-file'], async (files) => {
    await app.loadScan(files[0]);
  });
  dropZone(app, 'model-drop', ['model-files', 'model-folder'], (files) =>
    app.loadModel(files),
  );
  const on = (id: string, action: () => unknown) =>
    element(id).addEventListener('click', () => void action());
  on('scan-load', () => {
    const path = element<HTMLSelectElement>('scan-list').value;
    if (path) return app.loadEmbeddedScan(path);
  });
  on('segment', () => app.segment(numberInput('refine-steps')));
  element('overlay').addEventListener('change', () => void app.showOverlay());
  on('train-registration', () => app.fineTune(numberInput('train-steps')));
  on('train-quick', () =>
    app.trainQuick(numberInput('quick-steps'), numberInput('quick-scans')),
  );
  on('train-stop', () => app.stop());
  on('download-labels', () => app.downloadLabels());
  on('download-warped', () => app.downloadWarped());
  on('download-warped-labels', () => app.downloadWarpedLabels());
  on('download-model', () => app.downloadModel());
}

async function main(): Promise<void> {
  const app = new DemoApp();
  window.rrlMedsamDemo = { state: () => app.state() };
  wire(app);
  app.refresh();
  await listEmbeddedScans().catch((error) =>
    reportError(error, 'Embedded scan list'),
  );
  await app.start();
}

window.addEventListener('unhandledrejection', (event) => {
  reportError(event.reason, 'Unexpected error');
});
main().catch((error) => reportError(error, 'Page start'));
