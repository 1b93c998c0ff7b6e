// CPU references (float64, plain loops) for SAM's image encoder: relative
// position tables, attention with the decomposed relative position bias,
// the window partition, one transformer block and the whole encoder.
//
// Layout: tokens are channels last [B, H, W, C]; images and feature maps
// are [B, C, H, W]. Parameters are looked up by their official names
// (blocks.0.attn.qkv.weight, ...). Written from the math, not from the
// device code, so the two can check each other.

import { conv3dRef } from './conv.js';
import { normalCdf } from './elementwise.js';
import type { NDArray } from './ndarray.js';
import { layerNormChannelsRef, layerNormRef } from './norm.js';

export type ParameterMap = ReadonlyMap<string, NDArray>;

function zerosOf(shape: number[]): NDArray {
  const size = shape.reduce((n, d) => n * d, 1);
  return { shape, data: new Float64Array(size) };
}

function get(params: ParameterMap, name: string): NDArray {
  const value = params.get(name);
  if (!value) throw new Error(`samReference: parameter ${name} is missing`);
  return value;
}

/** Weight of input i in output o of linear resampling (align_corners false). */
function linearWeight(
  inSize: number,
  outSize: number,
  o: number,
  i: number,
): number {
  const source = Math.max(((o + 0.5) * inSize) / outSize - 0.5, 0);
  const lower = Math.floor(source);
  const upper = Math.min(lower + 1, inSize - 1);
  const fraction = source - lower;
  return (i === lower ? 1 - fraction : 0) + (i === upper ? fraction : 0);
}

/** Resamples the rows of `table` [L, c] linearly to `rows` rows. */
export function resampleRowsRef(table: NDArray, rows: number): NDArray {
  const [length, c] = table.shape;
  if (length === rows) return table;
  const out = zerosOf([rows, c]);
  for (let o = 0; o < rows; o++) {
    for (let i = 0; i < length; i++) {
      const weight = linearWeight(length, rows, o, i);
      if (weight === 0) continue;
      for (let j = 0; j < c; j++) {
        out.data[o * c + j] += weight * table.data[i * c + j];
      }
    }
  }
  return out;
}

/** Bilinear resampling of a grid [1, H, W, C] to [1, height, width, C]. */
export function resampleGridRef(
  grid: NDArray,
  height: number,
  width: number,
): NDArray {
  const [, h, w, c] = grid.shape;
  const out = zerosOf([1, height, width, c]);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const target = (y * width + x) * c;
      for (let sy = 0; sy < h; sy++) {
        const wy = linearWeight(h, height, y, sy);
        if (wy === 0) continue;
        for (let sx = 0; sx < w; sx++) {
          const wx = linearWeight(w, width, x, sx);
          if (wx === 0) continue;
          const source = (sy * w + sx) * c;
          for (let j = 0; j < c; j++) {
            out.data[target + j] += wy * wx * grid.data[source + j];
          }
        }
      }
    }
  }
  return out;
}

/**
 * Returns the relative position vector of every (query, key) pair along
 * an axis, [qSize, kSize, c], from `table` [L, c] resampled to
 * 2 max(q, k) - 1 rows.
 */
export function relativePositionTableRef(
  table: NDArray,
  qSize: number,
  kSize: number,
): NDArray {
  const rows = 2 * Math.max(qSize, kSize) - 1;
  const resized = resampleRowsRef(table, rows);
  const c = table.shape[1];
  const out = zerosOf([qSize, kSize, c]);
  const qStretch = Math.max(kSize / qSize, 1);
  const kStretch = Math.max(qSize / kSize, 1);
  for (let i = 0; i < qSize; i++) {
    for (let j = 0; j < kSize; j++) {
      const offset = i * qStretch - j * kStretch + (kSize - 1) * kStretch;
      const row = Math.trunc(offset);
      for (let e = 0; e < c; e++) {
        out.data[(i * kSize + j) * c + e] = resized.data[row * c + e];
      }
    }
  }
  return out;
}

/** x [..., in] times weight [out, in] transposed, plus bias [out]. */
export function linearRef(
  x: NDArray,
  weight: NDArray,
  bias: NDArray | null,
): NDArray {
  const [outFeatures, inFeatures] = weight.shape;
  const rows = x.data.length / inFeatures;
  const out = zerosOf([...x.shape.slice(0, -1), outFeatures]);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outFeatures; o++) {
      let acc = bias ? bias.data[o] : 0;
      for (let i = 0; i < inFeatures; i++) {
        acc += x.data[r * inFeatures + i] * weight.data[o * inFeatures + i];
      }
      out.data[r * outFeatures + o] = acc;
    }
  }
  return out;
}

/**
 * SAM's attention over whole grids x [B, H, W, C] with parameters
 * `${prefix}qkv.weight`, qkv.bias, proj.weight, proj.bias and, when
 * present, rel_pos_h and rel_pos_w.
 */
export function samAttentionRef(
  x: NDArray,
  params: ParameterMap,
  prefix: string,
  heads: number,
): NDArray {
  const [b, h, w, dim] = x.shape;
  const n = h * w;
  const c = dim / heads;
  const qkvWeight = get(params, `${prefix}qkv.weight`);
  const qkvBias = params.get(`${prefix}qkv.bias`) ?? null;
  const qkv = linearRef(x, qkvWeight, qkvBias);
  const relH = params.get(`${prefix}rel_pos_h`);
  const relW = params.get(`${prefix}rel_pos_w`);
  const tableH = relH ? relativePositionTableRef(relH, h, h) : null;
  const tableW = relW ? relativePositionTableRef(relW, w, w) : null;
  // qkv element of token t, part (0 q, 1 k, 2 v), head, channel.
  const at = (
    image: number,
    t: number,
    part: number,
    head: number,
    e: number,
  ) => qkv.data[(image * n + t) * 3 * dim + part * dim + head * c + e];
  const merged = zerosOf([b, h, w, dim]);
  const scores = new Float64Array(n);
  for (let image = 0; image < b; image++) {
    for (let head = 0; head < heads; head++) {
      for (let query = 0; query < n; query++) {
        const qy = Math.floor(query / w);
        const qx = query % w;
        let peak = -Infinity;
        for (let key = 0; key < n; key++) {
          const ky = Math.floor(key / w);
          const kx = key % w;
          let dot = 0;
          let bias = 0;
          for (let e = 0; e < c; e++) {
            const q = at(image, query, 0, head, e);
            dot += q * at(image, key, 1, head, e);
            if (tableH) bias += q * tableH.data[(qy * h + ky) * c + e];
            if (tableW) bias += q * tableW.data[(qx * w + kx) * c + e];
          }
          scores[key] = dot / Math.sqrt(c) + bias;
          peak = Math.max(peak, scores[key]);
        }
        let total = 0;
        for (let key = 0; key < n; key++) {
          scores[key] = Math.exp(scores[key] - peak);
          total += scores[key];
        }
        for (let e = 0; e < c; e++) {
          let acc = 0;
          for (let key = 0; key < n; key++) {
            acc += scores[key] * at(image, key, 2, head, e);
          }
          merged.data[(image * n + query) * dim + head * c + e] = acc / total;
        }
      }
    }
  }
  const projWeight = get(params, `${prefix}proj.weight`);
  return linearRef(merged, projWeight, get(params, `${prefix}proj.bias`));
}

/**
 * Token index inside the windows of position (y, x) of image `image`:
 * window (image, y / window, x / window), then row and column in it.
 */
function windowOffset(
  image: number,
  y: number,
  x: number,
  window: number,
  nh: number,
  nw: number,
): number {
  const wy = Math.floor(y / window);
  const wx = Math.floor(x / window);
  const index = (image * nh + wy) * nw + wx;
  return (index * window + (y % window)) * window + (x % window);
}

/** Zero-pads [B, H, W, C] to multiples of `window` and cuts it into windows. */
export function windowPartitionRef(x: NDArray, window: number): NDArray {
  const [b, h, w, c] = x.shape;
  const nh = Math.ceil(h / window);
  const nw = Math.ceil(w / window);
  const out = zerosOf([b * nh * nw, window, window, c]);
  for (let image = 0; image < b; image++) {
    for (let y = 0; y < h; y++) {
      for (let xPos = 0; xPos < w; xPos++) {
        const target = windowOffset(image, y, xPos, window, nh, nw) * c;
        const source = ((image * h + y) * w + xPos) * c;
        for (let e = 0; e < c; e++) out.data[target + e] = x.data[source + e];
      }
    }
  }
  return out;
}

/** Joins windows back into [B, H, W, C], dropping the padding. */
export function windowUnpartitionRef(
  windows: NDArray,
  window: number,
  b: number,
  h: number,
  w: number,
): NDArray {
  const c = windows.shape[3];
  const nh = Math.ceil(h / window);
  const nw = Math.ceil(w / window);
  const out = zerosOf([b, h, w, c]);
  for (let image = 0; image < b; image++) {
    for (let y = 0; y < h; y++) {
      for (let xPos = 0; xPos < w; xPos++) {
        const source = windowOffset(image, y, xPos, window, nh, nw) * c;
        const target = ((image * h + y) * w + xPos) * c;
        for (let e = 0; e < c; e++) {
          out.data[target + e] = windows.data[source + e];
        }
      }
    }
  }
  return out;
}

function addRef(a: NDArray, b: NDArray): NDArray {
  return { shape: [...a.shape], data: a.data.map((v, i) => v + b.data[i]) };
}

function geluArray(x: NDArray): NDArray {
  return { shape: [...x.shape], data: x.data.map((v) => v * normalCdf(v)) };
}

export interface SamBlockRefOptions {
  heads: number;
  /** Window side; 0 for global attention. */
  windowSize: number;
  eps: number;
}

/** Runs one SAM block on tokens [B, H, W, C], parameters under `prefix`. */
export function samBlockRef(
  x: NDArray,
  params: ParameterMap,
  prefix: string,
  options: SamBlockRefOptions,
): NDArray {
  const [b, h, w, dim] = x.shape;
  const param = (name: string) => get(params, `${prefix}${name}`);
  const norm = (name: string, v: NDArray) =>
    layerNormRef(
      v,
      dim,
      param(`${name}.weight`),
      param(`${name}.bias`),
      options.eps,
    );
  const normed = norm('norm1', x);
  const attnPrefix = `${prefix}attn.`;
  let attended: NDArray;
  if (options.windowSize > 0) {
    const windows = windowPartitionRef(normed, options.windowSize);
    const out = samAttentionRef(windows, params, attnPrefix, options.heads);
    attended = windowUnpartitionRef(out, options.windowSize, b, h, w);
  } else {
    attended = samAttentionRef(normed, params, attnPrefix, options.heads);
  }
  const mixed = addRef(x, attended);
  const lin1 = linearRef(
    norm('norm2', mixed),
    param('mlp.lin1.weight'),
    param('mlp.lin1.bias'),
  );
  const hidden = geluArray(lin1);
  const lin2 = [param('mlp.lin2.weight'), param('mlp.lin2.bias')] as const;
  const mlp = linearRef(hidden, ...lin2);
  return addRef(mixed, mlp);
}

export interface SamEncoderRefConfig {
  patchSize: number;
  depth: number;
  heads: number;
  windowSize: number;
  globalAttentionBlocks: readonly number[];
  layerNormEps: number;
}

/** conv2d as conv3d with depth 1: x [B, C, H, W], weight [O, C, kH, kW]. */
function conv2dRef(
  x: NDArray,
  weight: NDArray,
  bias: NDArray | null,
  stride: number,
  padding: number,
): NDArray {
  const [b, c, h, w] = x.shape;
  const [o, , kh, kw] = weight.shape;
  const out = conv3dRef(
    { shape: [b, c, 1, h, w], data: x.data },
    { shape: [o, c, 1, kh, kw], data: weight.data },
    bias,
    {
      stride: [1, stride, stride],
      padding: [0, padding, padding],
      dilation: [1, 1, 1],
    },
  );
  const [, , , oh, ow] = out.shape;
  return { shape: [b, o, oh, ow], data: out.data };
}

/** Axis i of the result is axis dims[i] of the 4D array x. */
function permute4(x: NDArray, dims: readonly number[]): NDArray {
  const shape = dims.map((d) => x.shape[d]);
  const [, s1, s2, s3] = x.shape;
  const strides = [s1 * s2 * s3, s2 * s3, s3, 1];
  const out = zerosOf(shape);
  let o = 0;
  for (let a = 0; a < shape[0]; a++)
    for (let b = 0; b < shape[1]; b++)
      for (let c = 0; c < shape[2]; c++)
        for (let d = 0; d < shape[3]; d++) {
          const index = [a, b, c, d];
          let source = 0;
          dims.forEach((dim, i) => (source += index[i] * strides[dim]));
          out.data[o++] = x.data[source];
        }
  return out;
}

/** Encodes images [B, 3, H, W] into features [B, out, H/p, W/p]. */
export function samEncoderRef(
  x: NDArray,
  params: ParameterMap,
  config: SamEncoderRefConfig,
): NDArray {
  const param = (name: string) => get(params, name);
  const patches = conv2dRef(
    x,
    param('patch_embed.proj.weight'),
    param('patch_embed.proj.bias'),
    config.patchSize,
    0,
  );
  let tokens = permute4(patches, [0, 2, 3, 1]);
  const pos = params.get('pos_embed');
  if (pos) {
    const [, gh, gw] = tokens.shape;
    const resized = resampleGridRef(pos, gh, gw);
    const perImage = resized.data.length;
    const data = tokens.data.map((v, i) => v + resized.data[i % perImage]);
    tokens = { shape: tokens.shape, data };
  }
  for (let i = 0; i < config.depth; i++) {
    const listed = config.globalAttentionBlocks.includes(i);
    const isGlobal = listed || config.windowSize === 0;
    tokens = samBlockRef(tokens, params, `blocks.${i}.`, {
      heads: config.heads,
      windowSize: isGlobal ? 0 : config.windowSize,
      eps: config.layerNormEps,
    });
  }
  let features = permute4(tokens, [0, 3, 1, 2]);
  features = conv2dRef(features, param('neck.0.weight'), null, 1, 0);
  features = layerNormChannelsRef(
    features,
    param('neck.1.weight'),
    param('neck.1.bias'),
    1e-6,
  );
  features = conv2dRef(features, param('neck.2.weight'), null, 1, 1);
  return layerNormChannelsRef(
    features,
    param('neck.3.weight'),
    param('neck.3.bias'),
    1e-6,
  );
}

/**
 * Runs SAM's mask_downscaling on a mask [N, C, H, W] or [N, C, D, H, W]
 * with parameters `mask_downscaling.{0,1,3,4,6}.*`.
 */
export function maskDownscalingRef(
  x: NDArray,
  params: ParameterMap,
): NDArray {
  const param = (name: string) => get(params, `mask_downscaling.${name}`);
  const is2d = x.shape.length === 4;
  const to5d = (a: NDArray): NDArray => {
    if (!is2d) return a;
    const [first, second, ...rest] = a.shape;
    return { shape: [first, second, 1, ...rest], data: a.data };
  };
  const conv = (input: NDArray, index: number, stride: number) => {
    const weight = to5d(param(`${index}.weight`));
    return conv3dRef(input, weight, param(`${index}.bias`), {
      stride: is2d ? [1, stride, stride] : [stride, stride, stride],
      padding: [0, 0, 0],
      dilation: [1, 1, 1],
    });
  };
  const norm = (input: NDArray, index: number) =>
    layerNormChannelsRef(
      input,
      param(`${index}.weight`),
      param(`${index}.bias`),
      1e-6,
    );
  let y = to5d(x);
  y = geluArray(norm(conv(y, 0, 2), 1));
  y = geluArray(norm(conv(y, 3, 2), 4));
  y = conv(y, 6, 1);
  if (!is2d) return y;
  const [n, c, , h, w] = y.shape;
  return { shape: [n, c, h, w], data: y.data };
}
