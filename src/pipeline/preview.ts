// PNG previews: the three orthogonal mid-slices of a volume side by side,
// and grids of panels (such as atlas, warped atlas, target and prediction)
// with one row per plane and a title above each column. Encoded with
// fast-png; see slices.ts for orientation and colours.

import { encode } from 'fast-png';
import { drawText, GLYPH_HEIGHT, textWidth } from './font.js';
import {
  naturalPixelMm,
  prepareVolume,
  renderSlices,
  type Plane,
  type RgbaImage,
  type SliceOptions,
  type VolumeLike,
} from './slices.js';

export type PreviewOptions = Omit<SliceOptions, 'plane' | 'index'> & {
  /** Planes to show, in order (default axial, coronal, sagittal). */
  planes?: Plane[];
  /** Slice index per plane; the middle by default. */
  indices?: Partial<Record<Plane, number>>;
  /** Title drawn above the slices. */
  title?: string;
};

export interface Panel {
  title?: string;
  image: VolumeLike;
  labels?: VolumeLike;
}

export type PanelOptions = Omit<SliceOptions, 'plane' | 'index' | 'labels'> & {
  /** Planes, one row each (default axial, coronal, sagittal). */
  planes?: Plane[];
  /** Slice index per plane; the middle by default. */
  indices?: Partial<Record<Plane, number>>;
};

const PLANES: Plane[] = ['axial', 'coronal', 'sagittal'];
const GAP = 4;
const TEXT_SCALE = 2;
const TITLE_HEIGHT = GLYPH_HEIGHT * TEXT_SCALE + 2 * GAP;

/**
 * Renders the mid-slices of a volume side by side (axial, coronal,
 * sagittal by default), with a label overlay when `labels` is given.
 */
export function renderPreview(
  volume: VolumeLike,
  options: PreviewOptions = {},
): RgbaImage {
  const prepared = prepareVolume(volume, options);
  const planes = options.planes ?? PLANES;
  const cells = planes.map((plane) =>
    renderSlices(prepared, { ...options, plane, index: options.indices?.[plane] }),
  );
  return composeGrid([cells], options.title ? [options.title] : undefined, true);
}

/** Encodes `renderPreview` as PNG bytes. */
export function previewPng(
  volume: VolumeLike,
  options: PreviewOptions = {},
): Uint8Array {
  return encodePng(renderPreview(volume, options));
}

/**
 * Renders panels side by side, one column per panel and one row per
 * plane, each panel windowed on its own intensities. All panels share one
 * pixel size in mm (the finest that any panel needs, unless `pixelMm` is
 * set), so scans on different grids show at the same scale.
 */
export function renderPanels(
  panels: Panel[],
  options: PanelOptions = {},
): RgbaImage {
  if (panels.length === 0) {
    throw new Error('panelPng: expected at least one panel');
  }
  const planes = options.planes ?? PLANES;
  const prepared = panels.map((panel) =>
    prepareVolume(panel.image, { ...options, labels: panel.labels }),
  );
  const pixelMm =
    options.pixelMm ??
    Math.min(
      ...prepared.flatMap((volume) =>
        planes.map((plane) => naturalPixelMm(volume.image, plane, options.zoom)),
      ),
    );
  const columns = prepared.map((volume) =>
    planes.map((plane) =>
      renderSlices(volume, {
        ...options,
        plane,
        index: options.indices?.[plane],
        pixelMm,
      }),
    ),
  );
  const rows = planes.map((_, row) => columns.map((column) => column[row]));
  const titles = panels.some((panel) => panel.title)
    ? panels.map((panel) => panel.title ?? '')
    : undefined;
  return composeGrid(rows, titles, false);
}

/** Encodes `renderPanels` as PNG bytes. */
export function panelPng(
  panels: Panel[],
  options: PanelOptions = {},
): Uint8Array {
  return encodePng(renderPanels(panels, options));
}

/** Encodes an RGBA image as PNG bytes (8 bits per channel). */
export function encodePng(image: RgbaImage): Uint8Array {
  return encode({
    width: image.width,
    height: image.height,
    data: image.data,
    channels: 4,
    depth: 8,
  });
}

/**
 * Places images on a black canvas in a grid, centred in cells as wide as
 * their column's widest image and as tall as their row's tallest. Titles
 * go above the columns, or once above everything when `spanning` is set.
 */
function composeGrid(
  rows: RgbaImage[][],
  titles: string[] | undefined,
  spanning: boolean,
): RgbaImage {
  const columnCount = Math.max(...rows.map((row) => row.length));
  const columnWidths = new Array(columnCount).fill(0);
  const rowHeights = rows.map((row) => Math.max(...row.map((cell) => cell.height)));
  for (const row of rows) {
    row.forEach((cell, column) => {
      columnWidths[column] = Math.max(columnWidths[column], cell.width);
    });
  }
  const titleHeight = titles ? TITLE_HEIGHT : 0;
  const width =
    columnWidths.reduce((sum, value) => sum + value, 0) + GAP * (columnCount + 1);
  const height =
    titleHeight +
    rowHeights.reduce((sum, value) => sum + value, 0) +
    GAP * (rows.length + 1);
  const canvas: RgbaImage = {
    width,
    height,
    data: new Uint8Array(width * height * 4),
  };
  for (let pixel = 3; pixel < canvas.data.length; pixel += 4) {
    canvas.data[pixel] = 255;
  }

  const columnStarts: number[] = [];
  let x = GAP;
  for (const columnWidth of columnWidths) {
    columnStarts.push(x);
    x += columnWidth + GAP;
  }
  let y = titleHeight + GAP;
  rows.forEach((row, rowIndex) => {
    row.forEach((cell, column) => {
      const left = columnStarts[column] + ((columnWidths[column] - cell.width) >> 1);
      const top = y + ((rowHeights[rowIndex] - cell.height) >> 1);
      blit(canvas, cell, left, top);
    });
    y += rowHeights[rowIndex] + GAP;
  });

  if (titles && spanning) {
    drawText(canvas, titles[0], (width - textWidth(titles[0], TEXT_SCALE)) >> 1, GAP, TEXT_SCALE);
  } else if (titles) {
    titles.forEach((title, column) => {
      const centre = columnStarts[column] + columnWidths[column] / 2;
      const left = Math.round(centre - textWidth(title, TEXT_SCALE) / 2);
      drawText(canvas, title, Math.max(0, left), GAP, TEXT_SCALE);
    });
  }
  return canvas;
}

function blit(canvas: RgbaImage, image: RgbaImage, left: number, top: number) {
  for (let row = 0; row < image.height; row++) {
    const source = row * image.width * 4;
    const target = ((top + row) * canvas.width + left) * 4;
    canvas.data.set(
      image.data.subarray(source, source + image.width * 4),
      target,
    );
  }
}
