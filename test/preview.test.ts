// Slice rendering and PNG previews: orientation, aspect ratio, windowing,
// label colours, panel layout, and a real IXI scan.

import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode } from 'fast-png';
import { describe, expect, it } from 'vitest';
import {
  createVolume,
  labelColor,
  loadStructureTable,
  groupLabels,
  panelPng,
  previewPng,
  readNifti,
  renderPanels,
  renderPreview,
  renderSlices,
  reorientToRas,
  type RgbaImage,
  type Volume,
} from '../src/index.js';
import { writePngFile } from '../src/node.js';

const SHARED = new URL('../../shared/data/', import.meta.url);

function readShared(relative: string): Volume {
  const bytes = new Uint8Array(readFileSync(new URL(relative, SHARED)));
  return readNifti(bytes, { name: relative });
}

/** Builds a 5x7x9 RAS volume whose values encode voxels: i + 10 j + 100 k. */
function codedVolume(spacing: [number, number, number] = [1, 1, 1]): Volume {
  const [nx, ny, nz] = [5, 7, 9];
  const data = new Float32Array(nx * ny * nz);
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) data[i + nx * (j + ny * k)] = i + 10 * j + 100 * k;
    }
  }
  const affine = Float64Array.of(
    spacing[0], 0, 0, 0, 0, spacing[1], 0, 0, 0, 0, spacing[2], 0, 0, 0, 0, 1,
  );
  return createVolume(data, [nx, ny, nz], affine);
}

/** Returns the red channel of a pixel, the grey level without overlay. */
function red(image: RgbaImage, x: number, y: number): number {
  return image.data[(y * image.width + x) * 4];
}

// Window [0, 1020] maps value v to round(v / 4), so pixels identify voxels.
const WINDOW: [number, number] = [0, 1020];
const grey = (value: number) => Math.round(value / 4);

describe('renderSlices orientation', () => {
  const volume = codedVolume();

  it('axial: anterior up, left on left', () => {
    const image = renderSlices(volume, {
      plane: 'axial',
      index: 2,
      zoom: 1,
      window: WINDOW,
    });
    expect([image.width, image.height]).toEqual([5, 7]);
    // Top-left pixel: i = 0 (left), j = 6 (anterior), k = 2.
    expect(red(image, 0, 0)).toBe(grey(0 + 60 + 200));
    expect(red(image, 4, 0)).toBe(grey(4 + 60 + 200));
    expect(red(image, 0, 6)).toBe(grey(0 + 0 + 200));
    expect(image.data[3]).toBe(255);
  });

  it('axial radiological flips columns', () => {
    const image = renderSlices(volume, {
      plane: 'axial',
      index: 2,
      zoom: 1,
      window: WINDOW,
      radiological: true,
    });
    expect(red(image, 0, 0)).toBe(grey(4 + 60 + 200));
    expect(red(image, 4, 0)).toBe(grey(0 + 60 + 200));
  });

  it('coronal: superior up', () => {
    const image = renderSlices(volume, {
      plane: 'coronal',
      index: 3,
      zoom: 1,
      window: WINDOW,
    });
    expect([image.width, image.height]).toEqual([5, 9]);
    expect(red(image, 0, 0)).toBe(grey(0 + 30 + 800));
    expect(red(image, 4, 8)).toBe(grey(4 + 30 + 0));
  });

  it('sagittal: anterior on the left', () => {
    const image = renderSlices(volume, {
      plane: 'sagittal',
      index: 1,
      zoom: 1,
      window: WINDOW,
    });
    expect([image.width, image.height]).toEqual([7, 9]);
    expect(red(image, 0, 0)).toBe(grey(1 + 60 + 800));
    expect(red(image, 6, 8)).toBe(grey(1 + 0 + 0));
  });

  it('middle slice by default', () => {
    const image = renderSlices(volume, { plane: 'axial', zoom: 1, window: WINDOW });
    expect(red(image, 0, 6)).toBe(grey(400));
  });

  it('non-RAS input shows the same', () => {
    // The same voxels stored with axes P, S, R as in the IXI scans.
    const ras = codedVolume();
    const affine = Float64Array.of(0, -1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 6, 0, 1);
    const [nx, ny, nz] = [7, 9, 5];
    const data = new Float32Array(nx * ny * nz);
    for (let k = 0; k < nz; k++) {
      for (let j = 0; j < ny; j++) {
        for (let i = 0; i < nx; i++) {
          // Voxel (i, j, k) lies at world (k, 6 - i, j): RAS voxel (k, 6 - i, j).
          data[i + nx * (j + ny * k)] = ras.data[k + 5 * (6 - i + 7 * j)];
        }
      }
    }
    const psr = createVolume(data, [nx, ny, nz], affine);
    expect(Array.from(reorientToRas(psr).data)).toEqual(Array.from(ras.data));
    for (const plane of ['axial', 'coronal', 'sagittal'] as const) {
      const expected = renderSlices(ras, { plane, window: WINDOW });
      const got = renderSlices(psr, { plane, window: WINDOW });
      expect(got.width, plane).toBe(expected.width);
      expect(Array.from(got.data), plane).toEqual(Array.from(expected.data));
    }
  });

  it('anisotropic voxels keep aspect', () => {
    const image = renderSlices(codedVolume([1, 2, 3]), {
      plane: 'coronal',
      index: 0,
      zoom: 1,
      window: WINDOW,
    });
    // Coronal: columns along x (5 mm), rows along z (27 mm), 1 mm pixels.
    expect([image.width, image.height]).toEqual([5, 27]);
    expect(red(image, 0, 0)).toBe(grey(800));
    expect(red(image, 0, 2)).toBe(grey(800));
    expect(red(image, 0, 3)).toBe(grey(700));
  });

  it('rejects bad planes and indices', () => {
    expect(() =>
      renderSlices(volume, { plane: 'oblique' as 'axial', window: WINDOW }),
    ).toThrow(`renderSlices: plane "oblique" is not 'axial', 'coronal' or 'sagittal'`);
    expect(() => renderSlices(volume, { plane: 'axial', index: 9 })).toThrow(
      'renderSlices: axial index 9 is outside 0..8',
    );
    const series = createVolume(new Float32Array(120), [2, 3, 4, 5]);
    expect(() => renderSlices(series, { plane: 'axial' })).toThrow(
      'renderSlices: image dims [2, 3, 4, 5] must be 3D [nx, ny, nz]',
    );
  });
});

describe('label overlay', () => {
  it('blends colours at alpha 0.4', () => {
    const image = createVolume(new Float32Array(27).fill(0.5), [3, 3, 3]);
    const labels = { data: new Float32Array(27), dims: [3, 3, 3] };
    labels.data[1 + 3 * (1 + 3 * 1)] = 7;
    const out = renderSlices(image, {
      plane: 'axial',
      labels,
      zoom: 1,
      window: [0, 1],
    });
    const [r, g, b] = labelColor(7);
    const at = (x: number, y: number) =>
      Array.from(out.data.subarray((y * 3 + x) * 4, (y * 3 + x) * 4 + 4));
    const base = 0.5 * 255;
    expect(at(1, 1)).toEqual([
      Math.round(0.6 * base + 0.4 * r),
      Math.round(0.6 * base + 0.4 * g),
      Math.round(0.6 * base + 0.4 * b),
      255,
    ]);
    // Label 0 is transparent.
    expect(at(0, 0)).toEqual([128, 128, 128, 255]);
  });

  it('colours are fixed and distinct', () => {
    expect(labelColor(5)).toEqual(labelColor(5));
    const seen = new Set<string>();
    for (let id = 1; id <= 64; id++) {
      const colour = labelColor(id);
      for (const channel of colour) {
        expect(Number.isInteger(channel)).toBe(true);
        expect(channel).toBeGreaterThanOrEqual(0);
        expect(channel).toBeLessThanOrEqual(255);
      }
      seen.add(colour.join());
    }
    expect(seen.size).toBe(64);
  });

  it('labels on another grid are resampled', () => {
    const image = createVolume(new Float32Array(64).fill(1), [4, 4, 4]);
    // Labels at 2 mm: voxel (1, 1, 1) covers image voxels 2 and 3 per axis.
    const coarse = createVolume(new Float32Array(8), [2, 2, 2], Float64Array.of(
      2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0, 0.5, 0.5, 0.5, 1,
    ));
    coarse.data[7] = 3;
    const out = renderSlices(image, {
      plane: 'axial',
      index: 3,
      labels: coarse,
      zoom: 1,
      window: [0, 2],
    });
    const coloured = (x: number, y: number) => {
      const pixel = (y * 4 + x) * 4;
      return out.data[pixel] !== out.data[pixel + 1] ||
        out.data[pixel + 1] !== out.data[pixel + 2];
    };
    // Rows run from anterior (j = 3) down: the labelled block is at the
    // top right (i = 2, 3 and j = 2, 3).
    expect(coloured(3, 0)).toBe(true);
    expect(coloured(2, 1)).toBe(true);
    expect(coloured(1, 0)).toBe(false);
    expect(coloured(3, 2)).toBe(false);
  });
});

describe('previews and panels', () => {
  it('preview puts three planes in a row', () => {
    const volume = codedVolume();
    const image = renderPreview(volume, { zoom: 1, window: WINDOW });
    // Cells 5x7, 5x9 and 7x9 with 4-pixel gaps around them.
    expect(image.width).toBe(4 + 5 + 4 + 5 + 4 + 7 + 4);
    expect(image.height).toBe(4 + 9 + 4);
    const png = previewPng(volume, { zoom: 1, window: WINDOW });
    expect(Array.from(png.subarray(0, 8))).toEqual([
      137, 80, 78, 71, 13, 10, 26, 10,
    ]);
    const decoded = decode(png);
    expect([decoded.width, decoded.height]).toEqual([image.width, image.height]);
    expect(decoded.channels).toBe(4);
    expect(Array.from(decoded.data)).toEqual(Array.from(image.data));
  });

  it('panel grid with titles', () => {
    const volume = codedVolume();
    const panels = [
      { title: 'atlas', image: volume },
      { title: 'target', image: volume, labels: volume },
    ];
    const image = renderPanels(panels, { zoom: 1, window: WINDOW });
    // Two columns of width 7 (the widest plane), rows of 7, 9 and 9, and a
    // 22-pixel title strip.
    expect(image.width).toBe(4 + 7 + 4 + 7 + 4);
    expect(image.height).toBe(22 + 4 + 7 + 4 + 9 + 4 + 9 + 4);
    let white = 0;
    for (let pixel = 0; pixel < image.width * 22; pixel++) {
      if (image.data[pixel * 4] === 255) white++;
    }
    expect(white).toBeGreaterThan(20);
    const decoded = decode(panelPng(panels, { zoom: 1, window: WINDOW }));
    expect([decoded.width, decoded.height]).toEqual([image.width, image.height]);
    expect(() => renderPanels([])).toThrow('panelPng: expected at least one panel');
  });

  it('panels share one scale', () => {
    const fine = codedVolume([1, 1, 1]);
    const coarse = codedVolume([2, 2, 2]);
    const image = renderPanels([{ image: fine }, { image: coarse }], {
      planes: ['axial'],
      pixelMm: 1,
      window: WINDOW,
    });
    // Axial cells: 5x7 mm and 10x14 mm at 1 mm per pixel.
    expect(image.width).toBe(4 + 5 + 4 + 10 + 4);
    expect(image.height).toBe(4 + 14 + 4);
  });

  it('writePngFile writes atomically', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'rrl-preview-'));
    try {
      const png = previewPng(codedVolume(), { zoom: 1 });
      const path = join(directory, 'preview.png');
      await writePngFile(path, png);
      expect(new Uint8Array(await readFile(path))).toEqual(png);
      expect(await readdir(directory)).toEqual(['preview.png']);
      await expect(writePngFile(join(directory, 'x.jpg'), png)).rejects.toThrow(
        'writePngFile: ' + join(directory, 'x.jpg') + ': file name must end in .png',
      );
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});

describe('IXI preview', () => {
  const image = readShared('ixi-brain/images/IXI012-HH-1211_t1.nii.gz');
  const labels = readShared('ixi-brain/labels/IXI012-HH-1211_labels.nii.gz');

  // Mean column of overlay pixels (where the channels differ).
  function meanColouredColumn(rendered: RgbaImage): number {
    let sum = 0;
    let count = 0;
    for (let y = 0; y < rendered.height; y++) {
      for (let x = 0; x < rendered.width; x++) {
        const pixel = (y * rendered.width + x) * 4;
        const data = rendered.data;
        if (data[pixel] !== data[pixel + 1] || data[pixel + 1] !== data[pixel + 2]) {
          sum += x;
          count++;
        }
      }
    }
    expect(count).toBeGreaterThan(0);
    return sum / count;
  }

  it('left ventricle on the left', () => {
    // Only MUSE 52 (left lateral ventricle) is drawn.
    const only = {
      ...labels,
      data: labels.data.map((value) => (value === 52 ? 52 : 0)),
    };
    for (const radiological of [false, true]) {
      const rendered = renderSlices(image, {
        plane: 'coronal',
        labels: only,
        index: 55,
        radiological,
      });
      const column = meanColouredColumn(rendered);
      if (radiological) expect(column).toBeGreaterThan(rendered.width / 2);
      else expect(column).toBeLessThan(rendered.width / 2);
    }
  });

  it('brain stem below the ventricles', () => {
    const rendered = renderSlices(image, {
      plane: 'sagittal',
      labels: { ...labels, data: labels.data.map((v) => (v === 35 ? 35 : 0)) },
    });
    const ventricles = renderSlices(image, {
      plane: 'sagittal',
      index: 40,
      labels: { ...labels, data: labels.data.map((v) => (v === 52 ? 52 : 0)) },
    });
    const meanRow = (picture: RgbaImage) => {
      let sum = 0;
      let count = 0;
      for (let pixel = 0; pixel < picture.width * picture.height; pixel++) {
        const [r, g, b] = picture.data.subarray(pixel * 4, pixel * 4 + 3);
        if (r !== g || g !== b) {
          sum += Math.floor(pixel / picture.width);
          count++;
        }
      }
      return sum / count;
    };
    expect(meanRow(rendered)).toBeGreaterThan(meanRow(ventricles) + 20);
  });

  it('structure preview encodes', () => {
    const table = loadStructureTable(
      readFileSync(new URL('../data/ixi-brain/structures.csv', import.meta.url), 'utf8'),
    );
    const png = previewPng(image, {
      labels: groupLabels(labels, table),
      title: 'IXI012',
    });
    const decoded = decode(png);
    // RAS dims 90 x 120 x 120 at 2 mm, zoom 2: cells 180x240, 180x240 and
    // 240x240, plus a title strip.
    expect(decoded.width).toBe(4 + 180 + 4 + 180 + 4 + 240 + 4);
    expect(decoded.height).toBe(22 + 4 + 240 + 4);
  });
});
