// Loss curves as a PNG: one small plot per loss term, each with its own
// value range because the terms differ in scale and the NCC term is
// negative. A grey line marks where stage 2 begins, and each title shows
// the first and last values. Runs in browsers too.

import { drawText, fillRect, GLYPH_HEIGHT } from './font.js';
import { encodePng } from './preview.js';
import type { RgbaImage } from './slices.js';

/** One logged step: its iteration (1-based), stage and loss values. */
export interface LossEntry {
  iteration: number;
  stage: 1 | 2;
  losses: Partial<Record<string, number>>;
}

export type LossHistory = LossEntry[];

const PANEL_WIDTH = 260;
const PANEL_HEIGHT = 150;
const COLUMNS = 3;
const MARGIN = 8;
const TITLE = GLYPH_HEIGHT + 2 * MARGIN;
const BACKGROUND: [number, number, number] = [24, 24, 28];
const AXES: [number, number, number] = [90, 90, 100];
const STAGE_LINE: [number, number, number] = [140, 140, 140];
const CURVE: [number, number, number] = [255, 190, 60];

/** Loss names in the order they first appear in the history. */
export function lossNames(history: LossHistory): string[] {
  const names: string[] = [];
  for (const entry of history) {
    for (const [name, value] of Object.entries(entry.losses)) {
      if (value !== undefined && !names.includes(name)) names.push(name);
    }
  }
  return names;
}

function formatValue(value: number): string {
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e4)) return value.toExponential(2);
  return value.toFixed(4);
}

/** Draws a line segment of one-pixel width (Bresenham). */
function drawLine(
  canvas: RgbaImage,
  x0: number,
  y0: number,
  x1: number,
  y1: number,
  color: readonly [number, number, number],
): void {
  let [x, y] = [Math.round(x0), Math.round(y0)];
  const [xEnd, yEnd] = [Math.round(x1), Math.round(y1)];
  const dx = Math.abs(xEnd - x);
  const dy = -Math.abs(yEnd - y);
  const sx = x < xEnd ? 1 : -1;
  const sy = y < yEnd ? 1 : -1;
  let error = dx + dy;
  for (;;) {
    fillRect(canvas, x, y, 1, 1, color);
    if (x === xEnd && y === yEnd) break;
    const doubled = 2 * error;
    if (doubled >= dy) {
      error += dy;
      x += sx;
    }
    if (doubled <= dx) {
      error += dx;
      y += sy;
    }
  }
}

function drawPanel(
  canvas: RgbaImage,
  history: LossHistory,
  name: string,
  left: number,
  top: number,
): void {
  const points = history
    .filter((entry) => Number.isFinite(entry.losses[name]))
    .map((entry) => ({ x: entry.iteration, y: entry.losses[name]!, stage: entry.stage }));
  if (points.length === 0) return;
  const first = points[0].y;
  const last = points[points.length - 1].y;
  drawText(canvas, `${name} ${formatValue(first)} TO ${formatValue(last)}`, left + MARGIN, top + MARGIN, 1);
  const plot = {
    left: left + MARGIN,
    top: top + TITLE,
    width: PANEL_WIDTH - 2 * MARGIN,
    height: PANEL_HEIGHT - TITLE - MARGIN,
  };
  fillRect(canvas, plot.left, plot.top + plot.height, plot.width, 1, AXES);
  fillRect(canvas, plot.left, plot.top, 1, plot.height, AXES);
  const xMin = points[0].x;
  const xMax = Math.max(points[points.length - 1].x, xMin + 1);
  let yMin = Math.min(...points.map((p) => p.y));
  let yMax = Math.max(...points.map((p) => p.y));
  if (yMax - yMin < 1e-12) {
    yMin -= 0.5;
    yMax += 0.5;
  }
  const px = (x: number) => plot.left + ((x - xMin) / (xMax - xMin)) * (plot.width - 1);
  const py = (y: number) => plot.top + (1 - (y - yMin) / (yMax - yMin)) * (plot.height - 1);
  const stage2 = points.find((p) => p.stage === 2);
  if (stage2 && stage2.x > xMin) {
    fillRect(canvas, px(stage2.x), plot.top, 1, plot.height, STAGE_LINE);
  }
  for (let i = 1; i < points.length; i++) {
    drawLine(canvas, px(points[i - 1].x), py(points[i - 1].y), px(points[i].x), py(points[i].y), CURVE);
  }
  if (points.length === 1) fillRect(canvas, px(points[0].x) - 1, py(points[0].y) - 1, 3, 3, CURVE);
}

/** Renders the history as a grid of per-loss plots. */
export function renderLossCurve(history: LossHistory, names = lossNames(history)): RgbaImage {
  const rows = Math.max(1, Math.ceil(names.length / COLUMNS));
  const width = COLUMNS * PANEL_WIDTH;
  const height = rows * PANEL_HEIGHT;
  const canvas: RgbaImage = { width, height, data: new Uint8Array(width * height * 4) };
  fillRect(canvas, 0, 0, width, height, BACKGROUND);
  names.forEach((name, i) => {
    drawPanel(canvas, history, name, (i % COLUMNS) * PANEL_WIDTH, Math.floor(i / COLUMNS) * PANEL_HEIGHT);
  });
  return canvas;
}

/** Encodes the loss curves as PNG bytes. */
export function lossCurvePng(history: LossHistory, names?: string[]): Uint8Array {
  return encodePng(renderLossCurve(history, names));
}
