// Multi-head self-attention of SAM's image encoder, with its decomposed
// relative position bias, and the window partition of the windowed blocks.
//
// Tokens are channels last: a grid [B, H, W, C]. For a query at row qy,
// column qx and a key at (ky, kx), the score of head h is
//
//   s = (q . k) / sqrt(c) + q . Rh[qy - ky + kH - 1] + q . Rw[qx - kx + kW - 1]
//
// with c the head width, q unscaled in the two bias terms, and Rh, Rw
// learned tables of one c-vector per vertical or horizontal offset
// (2 * size - 1 rows). The bias is "decomposed" because a 2D offset gets
// the sum of a vertical and a horizontal vector rather than its own
// vector, so each query needs kH + kW dot products for its bias instead of
// kH * kW. The softmax over the keys then weights the values.
//
// Global attention over a 64x64 grid (vit_b at 1024) has 4096 x 4096
// scores per head, 64 MiB, and 805 MB over 12 heads, far past the 128 MiB
// a storage binding may have on lavapipe. attend() therefore splits the
// heads (and windows) into groups and the queries into tiles of whole
// rows, so each score tensor stays under a byte budget.

import { add } from '../../ops/elementwise.js';
import { indexSelect } from '../../ops/index-select.js';
import { concat, narrow, pad, permute, slice } from '../../ops/layout.js';
import { matmul } from '../../ops/matmul.js';
import { softmax } from '../../ops/softmax.js';
import { scale } from '../../ops/unary.js';
import { reshape, unsqueeze } from '../../ops/view.js';
import { formatShape, tidy, type Tensor } from '../../tensor.js';
import type { RandomSource } from '../init.js';
import { resolveRandom } from '../init.js';
import { zeros } from '../../ops/creation.js';
import { Linear } from '../linear.js';
import { Module } from '../module.js';
import { resampleRows } from './interpolate.js';

/** Default byte budget of one score tensor in attend(): 32 MiB. */
export const DEFAULT_MAX_SCORE_BYTES = 32 * 2 ** 20;

/**
 * Returns the row of the offset table that each (query, key) pair along
 * one axis reads, row-major [qSize, kSize], and the table length
 * 2 * max(qSize, kSize) - 1. When the sizes differ, the shorter axis is
 * stretched onto the longer one: coordinates are scaled by
 * max(other / own, 1) before taking the offset, as SAM's get_rel_pos does.
 */
export function relativeOffsetRows(
  qSize: number,
  kSize: number,
): { rows: number; indices: number[] } {
  const qStretch = Math.max(kSize / qSize, 1);
  const kStretch = Math.max(qSize / kSize, 1);
  const indices: number[] = [];
  for (let i = 0; i < qSize; i++) {
    for (let j = 0; j < kSize; j++) {
      // Truncation toward zero like PyTorch's .long(); the value is >= 0.
      const offset = i * qStretch - j * kStretch + (kSize - 1) * kStretch;
      indices.push(Math.trunc(offset));
    }
  }
  return { rows: 2 * Math.max(qSize, kSize) - 1, indices };
}

/**
 * Expands a relative position table [rows, c] to one vector per (query,
 * key) pair along one axis: [qSize, kSize, c]. A table whose length is not
 * 2 * max(qSize, kSize) - 1 is first resampled linearly to that length
 * (align_corners false), as SAM does when a grid differs from the one the
 * table was trained for. Differentiable in `table`.
 */
export function relativePositionTable(
  table: Tensor,
  qSize: number,
  kSize: number,
): Tensor {
  if (table.rank !== 2) {
    throw new RangeError(
      `relativePositionTable: table ${formatShape(table.shape)} must be ` +
        '[rows, headDim]',
    );
  }
  const { rows, indices } = relativeOffsetRows(qSize, kSize);
  return tidy(() => {
    const resized = resampleRows(table, rows);
    const gathered = indexSelect(resized, 0, indices);
    return reshape(gathered, [qSize, kSize, table.shape[1]]);
  });
}

/** The two bias terms of every query, before they are broadcast. */
export interface RelativeBias {
  /** q . Rh for every key row: [B, qH, qW, kH]. */
  vertical: Tensor;
  /** q . Rw for every key column: [B, qH, qW, kW]. */
  horizontal: Tensor;
}

/**
 * Computes the decomposed bias terms for queries `q` [B, qH, qW, c] from
 * the expanded tables `tableH` [qH, kH, c] and `tableW` [qW, kW, c] (see
 * relativePositionTable).
 */
export function decomposedRelativeBias(
  q: Tensor,
  tableH: Tensor,
  tableW: Tensor,
): RelativeBias {
  const [, qh, qw, c] = q.shape;
  if (
    q.rank !== 4 ||
    tableH.rank !== 3 ||
    tableW.rank !== 3 ||
    tableH.shape[0] !== qh ||
    tableW.shape[0] !== qw ||
    tableH.shape[2] !== c ||
    tableW.shape[2] !== c
  ) {
    throw new RangeError(
      `decomposedRelativeBias: queries ${formatShape(q.shape)} need tables ` +
        `[${qh}, kH, ${c}] and [${qw}, kW, ${c}], got ` +
        `${formatShape(tableH.shape)} and ${formatShape(tableW.shape)}`,
    );
  }
  return tidy(() => {
    // Row y of the queries [B, y, qW, c] times table row y [c, kH].
    const vertical = matmul(q, tableH, { transposeB: true });
    // Column x: the queries [B, x, qH, c] times table row x [c, kW].
    const byColumn = permute(q, [0, 2, 1, 3]);
    const byColumnBias = matmul(byColumn, tableW, { transposeB: true });
    const horizontal = permute(byColumnBias, [0, 2, 1, 3]);
    return { vertical, horizontal };
  });
}

/** Query and key grid sides of an attention call. */
export interface AttentionGrid {
  queryHeight: number;
  queryWidth: number;
  keyHeight: number;
  keyWidth: number;
}

/** One piece of the work of attend(): batch entries and query rows. */
export interface AttentionTile {
  batchStart: number;
  batchEnd: number;
  rowStart: number;
  rowEnd: number;
}

/**
 * Splits attention over `batch` entries into tiles whose score tensor
 * [entries, rows * queryWidth, keys] needs at most `maxScoreBytes`. When
 * one entry fits, tiles are groups of whole entries. Otherwise each entry
 * is split into bands of query rows, with at least one row per tile.
 */
export function planAttentionTiles(
  batch: number,
  grid: AttentionGrid,
  maxScoreBytes: number,
): AttentionTile[] {
  const keys = grid.keyHeight * grid.keyWidth;
  const entryBytes = grid.queryHeight * grid.queryWidth * keys * 4;
  const tiles: AttentionTile[] = [];
  if (entryBytes <= maxScoreBytes) {
    const perEntry = Math.max(entryBytes, 1);
    const group = Math.max(1, Math.floor(maxScoreBytes / perEntry));
    for (let start = 0; start < batch; start += group) {
      const end = Math.min(batch, start + group);
      tiles.push({
        batchStart: start,
        batchEnd: end,
        rowStart: 0,
        rowEnd: grid.queryHeight,
      });
    }
    return tiles;
  }
  const rowBytes = grid.queryWidth * keys * 4;
  const band = Math.max(1, Math.floor(maxScoreBytes / rowBytes));
  for (let entry = 0; entry < batch; entry++) {
    for (let row = 0; row < grid.queryHeight; row += band) {
      const end = Math.min(grid.queryHeight, row + band);
      tiles.push({
        batchStart: entry,
        batchEnd: entry + 1,
        rowStart: row,
        rowEnd: end,
      });
    }
  }
  return tiles;
}

/** Copies entries [start, end) of axis 0 unless that is all of it. */
function batchRange(t: Tensor, start: number, end: number): Tensor {
  if (start === 0 && end === t.shape[0]) return t;
  return narrow(t, 0, start, end - start);
}

/** Copies [start, end) of axis 1 unless that is all of it. */
function axisOneRange(t: Tensor, start: number, end: number): Tensor {
  if (start === 0 && end === t.shape[1]) return t;
  return narrow(t, 1, start, end - start);
}

function attendTile(
  tile: AttentionTile,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  grid: AttentionGrid,
  bias: RelativeBias | null,
): Tensor {
  const { batchStart, batchEnd, rowStart, rowEnd } = tile;
  const rows = rowEnd - rowStart;
  const width = grid.queryWidth;
  const entries = batchEnd - batchStart;
  const keys = grid.keyHeight * grid.keyWidth;
  const entriesOf = (t: Tensor) => batchRange(t, batchStart, batchEnd);
  const qEntries = entriesOf(q);
  const qTile = axisOneRange(qEntries, rowStart * width, rowEnd * width);
  let scores = matmul(qTile, entriesOf(k), { transposeB: true });
  if (bias) {
    const vertical = axisOneRange(entriesOf(bias.vertical), rowStart, rowEnd);
    const horizontal = axisOneRange(
      entriesOf(bias.horizontal),
      rowStart,
      rowEnd,
    );
    // [e, rows, qW, kH, kW] + [e, rows, qW, kH, 1] + [e, rows, qW, 1, kW]
    const { keyHeight, keyWidth } = grid;
    const grid5 = reshape(scores, [entries, rows, width, keyHeight, keyWidth]);
    const withVertical = add(grid5, unsqueeze(vertical, 4));
    const biased = add(withVertical, unsqueeze(horizontal, 3));
    scores = reshape(biased, [entries, rows * width, keys]);
  }
  return matmul(softmax(scores, -1), entriesOf(v));
}

/**
 * Computes softmax(q k^T + bias) v over batch entries (windows x heads).
 * `q` is [B, qH * qW, c], already scaled by 1 / sqrt(c), `k` and `v` are
 * [B, kH * kW, c], and `bias` contains the terms of decomposedRelativeBias
 * (or is null). The work runs in tiles of at most `maxScoreBytes` of
 * scores each (see planAttentionTiles). Returns [B, qH * qW, c] and is
 * differentiable in every input.
 */
export function attend(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  grid: AttentionGrid,
  bias: RelativeBias | null,
  maxScoreBytes = DEFAULT_MAX_SCORE_BYTES,
): Tensor {
  const [batch, queries, c] = q.shape;
  const keys = grid.keyHeight * grid.keyWidth;
  const expected = [batch, keys, c];
  const shapesValid =
    q.rank === 3 &&
    queries === grid.queryHeight * grid.queryWidth &&
    k.rank === 3 &&
    v.rank === 3 &&
    k.shape.every((d, i) => d === expected[i]) &&
    v.shape.every((d, i) => d === expected[i]);
  if (!shapesValid) {
    throw new RangeError(
      `attend: q ${formatShape(q.shape)}, k ${formatShape(k.shape)} and v ` +
        `${formatShape(v.shape)} do not fit a ${grid.queryHeight}x` +
        `${grid.queryWidth} query grid and a ${grid.keyHeight}x` +
        `${grid.keyWidth} key grid (expected q [B, ` +
        `${grid.queryHeight * grid.queryWidth}, c], k and v [B, ${keys}, c])`,
    );
  }
  const tiles = planAttentionTiles(batch, grid, maxScoreBytes);
  if (tiles.length === 1) {
    return tidy(() => attendTile(tiles[0], q, k, v, grid, bias));
  }

  return tidy(() => {
    // Tiles of one batch group are query bands: join them along the
    // queries first, then join the groups along the batch. Each tile's
    // intermediates are freed before the next tile runs.
    const groups: Tensor[][] = [];
    for (const tile of tiles) {
      const out = tidy(() => attendTile(tile, q, k, v, grid, bias));
      if (tile.rowStart === 0) groups.push([]);
      groups[groups.length - 1].push(out);
    }
    const joined = groups.map((bands) =>
      bands.length === 1 ? bands[0] : concat(bands, 1),
    );
    return joined.length === 1 ? joined[0] : concat(joined, 0);
  });
}

/**
 * Pads a grid `x` [B, H, W, C] at the bottom and right to multiples of
 * `window` and splits it into windows [B * nH * nW, window, window, C],
 * ordered by image, then window row, then window column.
 */
export function windowPartition(
  x: Tensor,
  window: number,
): { windows: Tensor; paddedHeight: number; paddedWidth: number } {
  if (x.rank !== 4 || !Number.isInteger(window) || window < 1) {
    throw new RangeError(
      `windowPartition: input ${formatShape(x.shape)} must be [B, H, W, C] ` +
        `and window a positive integer, got ${window}`,
    );
  }
  const [b, h, w, c] = x.shape;
  const padH = (window - (h % window)) % window;
  const padW = (window - (w % window)) % window;
  const paddedHeight = h + padH;
  const paddedWidth = w + padW;
  const windows = tidy(() => {
    const pads = [[0, 0], [0, padH], [0, padW], [0, 0]];
    const padded = padH + padW > 0 ? pad(x, pads) : x;
    const nh = paddedHeight / window;
    const nw = paddedWidth / window;
    const split = reshape(padded, [b, nh, window, nw, window, c]);
    const ordered = permute(split, [0, 1, 3, 2, 4, 5]);
    return reshape(ordered, [b * nh * nw, window, window, c]);
  });
  return { windows, paddedHeight, paddedWidth };
}

/**
 * Reverses windowPartition: joins `windows` [B * nH * nW, window, window,
 * C] into [B, paddedHeight, paddedWidth, C] and crops the padding to
 * [B, height, width, C].
 */
export function windowUnpartition(
  windows: Tensor,
  window: number,
  padded: readonly [number, number],
  size: readonly [number, number],
): Tensor {
  const [paddedHeight, paddedWidth] = padded;
  const [height, width] = size;
  const nh = paddedHeight / window;
  const nw = paddedWidth / window;
  const [count, wh, ww, c] = windows.shape;
  if (
    windows.rank !== 4 ||
    wh !== window ||
    ww !== window ||
    !Number.isInteger(nh) ||
    !Number.isInteger(nw) ||
    count % (nh * nw) !== 0 ||
    height > paddedHeight ||
    width > paddedWidth
  ) {
    throw new RangeError(
      `windowUnpartition: windows ${formatShape(windows.shape)} do not tile ` +
        `a ${paddedHeight}x${paddedWidth} grid with window ${window} ` +
        `cropped to ${height}x${width}`,
    );
  }
  const b = count / (nh * nw);
  return tidy(() => {
    const split = reshape(windows, [b, nh, nw, window, window, c]);
    const ordered = permute(split, [0, 1, 3, 2, 4, 5]);
    const joined = reshape(ordered, [b, paddedHeight, paddedWidth, c]);
    if (height === paddedHeight && width === paddedWidth) return joined;
    return slice(joined, [0, 0, 0, 0], [b, height, width, c]);
  });
}

export interface SamAttentionOptions {
  qkvBias?: boolean;
  /**
   * Side of the token grid the relative position tables are made for: the
   * window size, or the whole grid in a global block. Null disables the
   * relative position bias.
   */
  relativePositionSize?: number | null;
  /** Byte budget of one score tensor (default DEFAULT_MAX_SCORE_BYTES). */
  maxScoreBytes?: number;
  seed?: RandomSource;
}

/**
 * SAM's multi-head attention over a token grid [B, H, W, C], with
 * parameters named as in the official checkpoints: qkv (C -> 3C), proj
 * (C -> C) and, with a relative position size s, rel_pos_h and rel_pos_w
 * [2s - 1, C / heads], initialised to zeros as in SAM.
 */
export class SamAttention extends Module {
  readonly qkv: Linear;
  readonly proj: Linear;
  readonly relPosH: Tensor | null = null;
  readonly relPosW: Tensor | null = null;
  readonly headDim: number;
  maxScoreBytes: number;

  constructor(
    readonly dim: number,
    readonly heads: number,
    options: SamAttentionOptions = {},
  ) {
    super();
    if (!Number.isInteger(heads) || heads < 1 || dim % heads !== 0) {
      throw new RangeError(
        `SamAttention: dim ${dim} must be a multiple of heads ${heads}`,
      );
    }
    this.headDim = dim / heads;
    this.maxScoreBytes = options.maxScoreBytes ?? DEFAULT_MAX_SCORE_BYTES;
    const random = resolveRandom(options.seed);
    const size = options.relativePositionSize ?? null;
    if (size !== null) {
      const shape = [2 * size - 1, this.headDim];
      this.relPosH = this.param('rel_pos_h', zeros(shape));
      this.relPosW = this.param('rel_pos_w', zeros(shape));
    }
    const bias = options.qkvBias ?? true;
    const qkv = new Linear(dim, 3 * dim, { bias, seed: random });
    this.qkv = this.module('qkv', qkv);
    this.proj = this.module('proj', new Linear(dim, dim, { seed: random }));
  }

  /** Attends over the whole grid `x` [B, H, W, C]; returns [B, H, W, C]. */
  forward(x: Tensor): Tensor {
    if (x.rank !== 4 || x.shape[3] !== this.dim) {
      throw new RangeError(
        `SamAttention: input ${formatShape(x.shape)} must be [B, H, W, ` +
          `${this.dim}]`,
      );
    }
    const [b, h, w, c] = x.shape;
    const { heads, headDim } = this;
    return tidy(() => {
      // [B, H, W, 3C] -> [3, B * heads, H * W, headDim]
      const qkv = reshape(this.qkv.forward(x), [b, h * w, 3, heads, headDim]);
      const perHead = [b * heads, h * w, headDim];
      const split = reshape(permute(qkv, [2, 0, 3, 1, 4]), [3, ...perHead]);
      const [q, k, v] = [0, 1, 2].map((i) =>
        reshape(narrow(split, 0, i, 1), perHead),
      );
      let bias: RelativeBias | null = null;
      if (this.relPosH && this.relPosW) {
        const tableH = relativePositionTable(this.relPosH, h, h);
        const tableW = relativePositionTable(this.relPosW, w, w);
        const queryGrid = reshape(q, [b * heads, h, w, headDim]);
        bias = decomposedRelativeBias(queryGrid, tableH, tableW);
      }
      const grid = { queryHeight: h, queryWidth: w, keyHeight: h, keyWidth: w };
      const scaled = scale(q, headDim ** -0.5);
      const out = attend(scaled, k, v, grid, bias, this.maxScoreBytes);
      // [B * heads, H * W, headDim] -> [B, H, W, C]
      const byHead = reshape(out, [b, heads, h, w, headDim]);
      const merged = permute(byHead, [0, 2, 3, 1, 4]);
      return this.proj.forward(reshape(merged, [b, h, w, c]));
    });
  }
}
