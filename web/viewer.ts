// The scan viewer: niivue (WebGL2) on the page's canvas, with the scan as
// the background volume and the segmentation as a label overlay whose
// colours match the library's PNG previews (labelColor).

import { Niivue, NVImage, SLICE_TYPE } from '@niivue/niivue';
import { isGzip } from '../src/pipeline/gzip.js';
import { labelColor } from '../src/pipeline/slices.js';
import type { LabelEntry } from '../src/pipeline/model-folder.js';
import { PageError } from './messages.js';

// Opacity of the label overlay over the scan.
const OVERLAY_OPACITY = 0.5;

/** Builds niivue's label colour table: ids 0..K, background transparent. */
function labelColormap(labels: readonly LabelEntry[]) {
  const maxId = Math.max(0, ...labels.map((entry) => entry.id));
  const names = new Map(labels.map((entry) => [entry.id, entry.name]));
  const table = { R: [] as number[], G: [] as number[], B: [] as number[] };
  const alpha: number[] = [];
  const ids: number[] = [];
  const text: string[] = [];
  for (let id = 0; id <= maxId; id++) {
    const [r, g, b] = labelColor(id);
    table.R.push(r);
    table.G.push(g);
    table.B.push(b);
    alpha.push(id === 0 ? 0 : 255);
    ids.push(id);
    text.push(names.get(id) ?? `label ${id}`);
  }
  return { ...table, A: alpha, I: ids, labels: text };
}

/** Copies bytes into a fresh ArrayBuffer, as niivue expects one. */
function arrayBufferOf(bytes: Uint8Array): ArrayBuffer {
  return bytes.slice().buffer as ArrayBuffer;
}

export class Viewer {
  private readonly niivue: Niivue;
  private attached: Promise<unknown> | null = null;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly onLocation: (text: string) => void,
  ) {
    this.niivue = new Niivue({
      // The page handles drops itself (scan and model zones).
      dragAndDropEnabled: false,
      backColor: [0, 0, 0, 1],
      show3Dcrosshair: true,
      isColorbar: false,
      logLevel: 'warn',
    });
    this.niivue.onLocationChange = (location) => {
      const text = (location as { string?: string }).string;
      if (text) this.onLocation(text);
    };
  }

  private attach(): Promise<unknown> {
    if (!this.attached) {
      this.attached = this.niivue.attachToCanvas(this.canvas).catch((error) => {
        this.attached = null;
        throw new PageError(
          'no-webgl',
          'The viewer cannot start',
          'niivue needs WebGL2, which failed here: ' +
            `${(error as Error).message}. ` +
            'Segmentation still works; the results can be downloaded.',
        );
      });
    }
    return this.attached;
  }

  /**
   * Shows `scan` (NIfTI bytes) and, when given, `labels` (a NIfTI label
   * map on the scan's grid) over it.
   */
  async show(
    scan: { name: string; bytes: Uint8Array },
    labels?: { bytes: Uint8Array; entries: readonly LabelEntry[] },
  ): Promise<void> {
    await this.attach();
    // niivue picks its reader by the name's suffix and fetches the name as
    // a URL when it does not recognise the suffix (upper case, none, or a
    // name such as "https:host"), although the bytes are in memory. The
    // library has read the scan already, so niivue gets a fixed name.
    const known = isGzip(scan.bytes) ? 'scan.nii.gz' : 'scan.nii';
    const background = await NVImage.loadFromUrl({
      url: known,
      name: known,
      buffer: arrayBufferOf(scan.bytes),
    });
    const volumes = [background];
    if (labels) {
      const overlay = await NVImage.loadFromUrl({
        url: 'segmentation.nii.gz',
        name: 'segmentation.nii.gz',
        buffer: arrayBufferOf(labels.bytes),
        opacity: OVERLAY_OPACITY,
      });
      overlay.setColormapLabel(labelColormap(labels.entries));
      volumes.push(overlay);
    }
    while (this.niivue.volumes.length > 0) {
      this.niivue.removeVolumeByIndex(0);
    }
    for (const volume of volumes) this.niivue.addVolume(volume);
    this.niivue.setSliceType(SLICE_TYPE.MULTIPLANAR);
    this.niivue.updateGLVolume();
  }
}
