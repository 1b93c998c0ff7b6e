import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  Random,
  concat,
  gradCheck,
  mapCheckpointKey,
  mul,
  noGrad,
  readTorchCheckpoint,
  tensor,
  writeSafetensors,
  zeros,
  type HostTensor,
  type Tensor,
} from '../src/index.js';
import {
  DEFAULT_MAX_SCORE_BYTES,
  SamAttention,
  attend,
  decomposedRelativeBias,
  planAttentionTiles,
  relativeOffsetRows,
  relativePositionTable,
  windowPartition,
  windowUnpartition,
} from '../src/nn/sam/attention.js';
import { Conv2d, Conv3d } from '../src/nn/conv.js';
import { SamBlock } from '../src/nn/sam/blocks.js';
import {
  SAM_CONFIGS,
  samConfig,
  samEncoderParameterCount,
  samEncoderShapes,
} from '../src/nn/sam/config.js';
import { SamImageEncoder } from '../src/nn/sam/encoder.js';
import {
  SAM_IMAGE_ENCODER_KEYS,
  SAM_MASK_PROMPT_KEYS,
  inferSamConfig,
  loadWeights,
  readSamCheckpoint,
} from '../src/nn/sam/key-map.js';
import {
  SAM_PIXEL_MEAN,
  SAM_PIXEL_STD,
  resizedShape,
  samPreprocess,
} from '../src/nn/sam/preprocess.js';
import {
  MaskPromptEncoder2d,
  MaskPromptEncoder3d,
} from '../src/nn/sam/prompt-encoder.js';
import { conv3dRef } from '../src/reference/conv.js';
import type { NDArray } from '../src/reference/ndarray.js';
import {
  maskDownscalingRef,
  relativePositionTableRef,
  samAttentionRef,
  samBlockRef,
  samEncoderRef,
  windowPartitionRef,
  windowUnpartitionRef,
} from '../src/reference/sam.js';
import { device, expectClose } from './helpers.js';
import {
  checkModuleGradients,
  randomizeParameters,
} from './module-gradcheck.js';

beforeAll(device);

const FIXTURES = fileURLToPath(new URL('./fixtures/sam/', import.meta.url));

interface EncoderCase {
  size: number;
  shape: number[];
  out: number[];
}

interface Expected {
  encoder: EncoderCase[];
  prompt2d: { in_shape: number[]; shape: number[]; out: number[] };
  prompt3d: {
    in_shape: number[];
    input: number[];
    shape: number[];
    out: number[];
    weights: Record<string, { shape: number[]; data: number[] }>;
  };
}

const expected = JSON.parse(
  readFileSync(`${FIXTURES}expected.json`, 'utf8'),
) as Expected;
const checkpointBytes = new Uint8Array(readFileSync(`${FIXTURES}tiny.pth`));
const checkpoint = readTorchCheckpoint(checkpointBytes);

/** Computes the input formula of scripts/make-sam-fixtures.py (pattern()). */
function pattern(shape: readonly number[]): Float32Array {
  const [n, c, h, w] = shape;
  const values = new Float32Array(n * c * h * w);
  let index = 0;
  for (let a = 0; a < n; a++) {
    for (let ch = 0; ch < c; ch++) {
      for (let i = 0; i < h; i++) {
        for (let j = 0; j < w; j++) {
          const smooth =
            Math.sin(0.37 * i + 1.3 * ch + 0.5 * a) *
            Math.cos(0.23 * j - 0.7 * ch);
          const phase = (7 * i + 13 * j + 5 * ch + 3 * a) % 11;
          const ripple = (0.1 * (phase - 5)) / 5;
          values[index++] = smooth + ripple;
        }
      }
    }
  }
  return values;
}

async function run(
  f: () => Tensor,
): Promise<{ shape: number[]; data: Float32Array }> {
  const out = noGrad(f);
  const data = await out.toArray();
  const shape = [...out.shape];
  out.dispose();
  return { shape, data };
}

describe('sam image encoder parity', () => {
  it.each(expected.encoder.map((c) => [c.size, c] as const))(
    'tiny matches pytorch at %i pixels',
    async (size, reference) => {
      const encoder = new SamImageEncoder('tiny', { seed: 1 });
      const report = loadWeights(encoder, checkpoint, {
        mapping: SAM_IMAGE_ENCODER_KEYS,
      });
      expect(report.missing).toEqual([]);
      const x = tensor(pattern([1, 3, size, size]), [1, 3, size, size]);
      const got = await run(() => encoder.forward(x));
      x.dispose();
      encoder.dispose();
      expect(got.shape).toEqual(reference.shape);
      expectClose(got.data, reference.out, 1e-4, 0, `tiny ${size}`);
    },
  );
});

// Values of a seeded normal draw, rounded to float32, as an NDArray.
function host(shape: number[], seed: number, scale = 1): NDArray {
  const random = new Random(seed);
  const size = shape.reduce((n, d) => n * d, 1);
  const data = Float64Array.from({ length: size }, () =>
    Math.fround(scale * random.normal()),
  );
  return { shape, data };
}

function upload(array: NDArray): Tensor {
  return tensor(Float32Array.from(array.data), array.shape);
}

describe('relative position tables', () => {
  it('offset rows of equal sizes', () => {
    const { rows, indices } = relativeOffsetRows(3, 3);
    expect(rows).toBe(5);
    // Row i - j + 2 for query i and key j.
    expect(indices).toEqual([2, 1, 0, 3, 2, 1, 4, 3, 2]);
  });

  it('offset rows stretch the shorter axis', () => {
    // Two queries over four keys: queries are placed at 0 and 2.
    const { rows, indices } = relativeOffsetRows(2, 4);
    expect(rows).toBe(7);
    expect(indices).toEqual([3, 2, 1, 0, 5, 4, 3, 2]);
  });

  it.each([
    ['same length', 5, 3, 3],
    ['resampled up', 5, 4, 4],
    ['resampled down', 9, 3, 3],
    ['queries and keys differ', 5, 2, 4],
  ])('table matches reference, %s', async (_, length, q, k) => {
    const table = host([length, 3], 5);
    const got = relativePositionTable(upload(table), q, k);
    const ref = relativePositionTableRef(table, q, k);
    expect(got.shape).toEqual(ref.shape);
    expectClose(await got.toArray(), ref.data, 1e-6, 1e-7);
    got.dispose();
  });

  it('table gradient with resampling', async () => {
    const result = await gradCheck(
      (table) => relativePositionTable(table, 4, 4),
      (table) => relativePositionTableRef(table, 4, 4),
      [{ shape: [5, 3], seed: 3 }],
    );
    expect(result.ok, result.report).toBe(true);
  });

  it('decomposed bias gradient', async () => {
    // [B, qH, qW, c] queries, tables [qH, kH, c] and [qW, kW, c]; the two
    // bias terms are joined along the last axis to give one output.
    const result = await gradCheck(
      (q, tableH, tableW) => {
        const bias = decomposedRelativeBias(q, tableH, tableW);
        return concat([bias.vertical, bias.horizontal], 3);
      },
      (q, tableH, tableW) => decomposedBiasRef(q, tableH, tableW),
      [
        { shape: [2, 2, 3, 4], seed: 1 },
        { shape: [2, 2, 4], seed: 2 },
        { shape: [3, 3, 4], seed: 3 },
      ],
    );
    expect(result.ok, result.report).toBe(true);
  });

  it('decomposed bias rejects mismatched tables', () => {
    const q = zeros([1, 2, 3, 4]);
    const tableH = zeros([2, 2, 4]);
    const tableW = zeros([2, 3, 4]);
    expect(() => decomposedRelativeBias(q, tableH, tableW)).toThrow(
      'decomposedRelativeBias: queries [1,2,3,4] need tables [2, kH, 4] ' +
        'and [3, kW, 4], got [2,2,4] and [2,3,4]',
    );
    for (const t of [q, tableH, tableW]) t.dispose();
  });
});

/** q . Rh and q . Rw joined on the last axis: [B, qH, qW, kH + kW]. */
function decomposedBiasRef(
  q: NDArray,
  tableH: NDArray,
  tableW: NDArray,
): NDArray {
  const [b, qh, qw, c] = q.shape;
  const kh = tableH.shape[1];
  const kw = tableW.shape[1];
  const out = new Float64Array(b * qh * qw * (kh + kw));
  let o = 0;
  for (let n = 0; n < b; n++)
    for (let y = 0; y < qh; y++)
      for (let x = 0; x < qw; x++) {
        const base = ((n * qh + y) * qw + x) * c;
        for (let key = 0; key < kh + kw; key++) {
          const row = key < kh ? (y * kh + key) * c : (x * kw + key - kh) * c;
          const table = key < kh ? tableH : tableW;
          let acc = 0;
          for (let e = 0; e < c; e++) {
            acc += q.data[base + e] * table.data[row + e];
          }
          out[o++] = acc;
        }
      }
  return { shape: [b, qh, qw, kh + kw], data: out };
}

/** softmax(q k^T + bias) v with the bias terms of decomposedBiasRef. */
function attendRef(
  q: NDArray,
  k: NDArray,
  v: NDArray,
  vertical: NDArray,
  horizontal: NDArray,
  keyWidth: number,
): NDArray {
  const [b, queries, c] = q.shape;
  const keys = k.shape[1];
  const kh = keys / keyWidth;
  const out = new Float64Array(b * queries * c);
  const scores = new Float64Array(keys);
  for (let n = 0; n < b; n++)
    for (let i = 0; i < queries; i++) {
      let peak = -Infinity;
      for (let j = 0; j < keys; j++) {
        let dot = 0;
        const qRow = (n * queries + i) * c;
        const kRow = (n * keys + j) * c;
        for (let e = 0; e < c; e++) dot += q.data[qRow + e] * k.data[kRow + e];
        const ky = Math.floor(j / keyWidth);
        dot += vertical.data[(n * queries + i) * kh + ky];
        dot += horizontal.data[(n * queries + i) * keyWidth + (j % keyWidth)];
        scores[j] = dot;
        peak = Math.max(peak, dot);
      }
      let total = 0;
      for (let j = 0; j < keys; j++) {
        scores[j] = Math.exp(scores[j] - peak);
        total += scores[j];
      }
      for (let e = 0; e < c; e++) {
        let acc = 0;
        for (let j = 0; j < keys; j++) {
          acc += scores[j] * v.data[(n * keys + j) * c + e];
        }
        out[(n * queries + i) * c + e] = acc / total;
      }
    }
  return { shape: [b, queries, c], data: out };
}

describe('tiled attention', () => {
  const grid = { queryHeight: 3, queryWidth: 2, keyHeight: 2, keyWidth: 3 };

  it('plans vit_b global attention under the binding limit', () => {
    // 12 heads over a 64x64 grid: 64 MiB of scores per head, so each head
    // splits into bands of 32 query rows (1 MiB of scores per row).
    const vitB = {
      queryHeight: 64,
      queryWidth: 64,
      keyHeight: 64,
      keyWidth: 64,
    };
    const tiles = planAttentionTiles(12, vitB, DEFAULT_MAX_SCORE_BYTES);
    expect(tiles.length).toBe(24);
    const covered = new Set<string>();
    for (const tile of tiles) {
      const entries = tile.batchEnd - tile.batchStart;
      const bytes = entries * (tile.rowEnd - tile.rowStart) * 64 * 4096 * 4;
      expect(bytes).toBeLessThanOrEqual(DEFAULT_MAX_SCORE_BYTES);
      for (let e = tile.batchStart; e < tile.batchEnd; e++) {
        for (let r = tile.rowStart; r < tile.rowEnd; r++) {
          covered.add(`${e}:${r}`);
        }
      }
    }
    expect(covered.size).toBe(12 * 64);
  });

  it('plans small windows as batch groups', () => {
    // 25 windows x 12 heads of 14x14 tokens: 150 KiB of scores each.
    const window = {
      queryHeight: 14,
      queryWidth: 14,
      keyHeight: 14,
      keyWidth: 14,
    };
    const tiles = planAttentionTiles(300, window, 16 * 2 ** 20);
    expect(tiles.length).toBe(3);
    expect(tiles[0]).toEqual({
      batchStart: 0,
      batchEnd: 109,
      rowStart: 0,
      rowEnd: 14,
    });
    expect(tiles[2].batchEnd).toBe(300);
  });

  // Scores of one entry take 6 x 6 x 4 = 144 bytes and those of one query
  // row 48, so a 300-byte budget groups two entries, 100 bytes makes bands
  // of two rows and 40 bytes single rows.
  it.each([
    ['in one piece', DEFAULT_MAX_SCORE_BYTES],
    ['in batch groups', 300],
    ['in query bands', 100],
    ['in single rows', 40],
  ])('matches reference %s', async (_, budget) => {
    const q = host([3, 6, 4], 1);
    const k = host([3, 6, 4], 2);
    const v = host([3, 6, 4], 3);
    const vertical = host([3, 3, 2, 2], 4);
    const horizontal = host([3, 3, 2, 3], 5);
    const tensors = [q, k, v, vertical, horizontal].map(upload);
    const [tq, tk, tv, tVertical, tHorizontal] = tensors;
    const bias = { vertical: tVertical, horizontal: tHorizontal };
    const got = attend(tq, tk, tv, grid, bias, budget);
    const ref = attendRef(q, k, v, vertical, horizontal, 3);
    expectClose(await got.toArray(), ref.data, 1e-5, 1e-6);
    for (const t of [...tensors, got]) t.dispose();
  });

  it.each([
    ['in one piece', DEFAULT_MAX_SCORE_BYTES],
    ['in query bands', 40],
  ])('gradient %s', async (_, budget) => {
    const result = await gradCheck(
      (q, k, v, vertical, horizontal) =>
        attend(q, k, v, grid, { vertical, horizontal }, budget),
      (q, k, v, vertical, horizontal) =>
        attendRef(q, k, v, vertical, horizontal, 3),
      [
        { shape: [2, 6, 3], seed: 1 },
        { shape: [2, 6, 3], seed: 2 },
        { shape: [2, 6, 3], seed: 3 },
        { shape: [2, 3, 2, 2], seed: 4 },
        { shape: [2, 3, 2, 3], seed: 5 },
      ],
    );
    expect(result.ok, result.report).toBe(true);
  });

  it('rejects keys of the wrong length', () => {
    const q = zeros([2, 6, 3]);
    const k = zeros([2, 5, 3]);
    expect(() => attend(q, k, k, grid, null)).toThrow(
      'attend: q [2,6,3], k [2,5,3] and v [2,5,3] do not fit a 3x2 query ' +
        'grid and a 2x3 key grid (expected q [B, 6, c], k and v [B, 6, c])',
    );
    q.dispose();
    k.dispose();
  });
});

describe('window partition', () => {
  it.each([
    ['with padding', [2, 5, 7, 3], 3],
    ['without padding', [1, 4, 6, 2], 2],
  ] as const)('matches reference %s', async (_, shape, window) => {
    const x = host([...shape], 9);
    const parts = windowPartition(upload(x), window);
    const { windows, paddedHeight, paddedWidth } = parts;
    const ref = windowPartitionRef(x, window);
    expect(windows.shape).toEqual(ref.shape);
    expectClose(await windows.toArray(), ref.data, 0, 0);
    const [b, h, w] = shape;
    expect(paddedHeight).toBe(Math.ceil(h / window) * window);
    expect(paddedWidth).toBe(Math.ceil(w / window) * window);
    const padded = [paddedHeight, paddedWidth] as const;
    const back = windowUnpartition(windows, window, padded, [h, w]);
    expect(back.shape).toEqual([...shape]);
    expectClose(await back.toArray(), x.data, 0, 0);
    const refBack = windowUnpartitionRef(ref, window, b, h, w);
    expectClose(refBack.data, x.data, 0, 0);
    windows.dispose();
    back.dispose();
  });

  it('gradient through padding and cropping', async () => {
    // Partition, scale each window by its index, join again.
    const result = await gradCheck(
      (x) => {
        const parts = windowPartition(x, 2);
        const count = parts.windows.shape[0];
        const weights = tensor(
          Float32Array.from({ length: count }, (_, i) => i + 1),
          [count, 1, 1, 1],
        );
        const scaled = mul(parts.windows, weights);
        const padded = [parts.paddedHeight, parts.paddedWidth] as const;
        return windowUnpartition(scaled, 2, padded, [3, 5]);
      },
      (x) => {
        const windows = windowPartitionRef(x, 2);
        const per = 2 * 2 * 2;
        const data = windows.data.map(
          (value, i) => value * (Math.floor(i / per) + 1),
        );
        return windowUnpartitionRef({ shape: windows.shape, data }, 2, 1, 3, 5);
      },
      [{ shape: [1, 3, 5, 2], seed: 4 }],
    );
    expect(result.ok, result.report).toBe(true);
  });

  it('unpartition rejects windows that do not tile', () => {
    const windows = zeros([5, 2, 2, 3]);
    expect(() => windowUnpartition(windows, 2, [4, 4], [3, 3])).toThrow(
      'windowUnpartition: windows [5,2,2,3] do not tile a 4x4 grid with ' +
        'window 2 cropped to 3x3',
    );
    windows.dispose();
  });
});

describe('sam modules against references', () => {
  it('attention gradients with relative positions', async () => {
    const attention = new SamAttention(4, 2, {
      relativePositionSize: 3,
      seed: 1,
    });
    randomizeParameters(attention, 2);
    const result = await checkModuleGradients(
      attention,
      host([2, 3, 3, 4], 3),
      (x) => attention.forward(x),
      (x, params) => samAttentionRef(x, params, '', 2),
    );
    expect(result.ok, result.report).toBe(true);
    attention.dispose();
  });

  it('attention resamples tables for another grid', async () => {
    // Tables made for a 3x3 grid, run on 4x2 tokens.
    const attention = new SamAttention(4, 2, {
      relativePositionSize: 3,
      seed: 1,
    });
    randomizeParameters(attention, 4);
    const result = await checkModuleGradients(
      attention,
      host([1, 4, 2, 4], 5),
      (x) => attention.forward(x),
      (x, params) => samAttentionRef(x, params, '', 2),
    );
    expect(result.ok, result.report).toBe(true);
    attention.dispose();
  });

  it('windowed block gradients with padding', async () => {
    // A 5x4 grid in 3x3 windows pads to 6x6: four windows.
    const block = new SamBlock(4, {
      heads: 2,
      mlpHidden: 8,
      windowSize: 3,
      qkvBias: true,
      relativePositionSize: 3,
      layerNormEps: 1e-6,
      seed: 3,
    });
    randomizeParameters(block, 6);
    const result = await checkModuleGradients(
      block,
      host([1, 5, 4, 4], 7),
      (x) => block.forward(x),
      (x, params) =>
        samBlockRef(x, params, '', { heads: 2, windowSize: 3, eps: 1e-6 }),
    );
    expect(result.ok, result.report).toBe(true);
    block.dispose();
  });

  it('micro encoder gradients at another size', async () => {
    // Made for 32x32 input (a 4x4 token grid), run at 24x40 (3x5), so the
    // position embedding and the global tables are resampled.
    const config = samConfig('tiny', {
      name: 'micro',
      imageSize: 32,
      patchSize: 8,
      embedDim: 8,
      heads: 2,
      outChannels: 4,
      windowSize: 2,
      globalAttentionBlocks: [1],
    });
    const encoder = new SamImageEncoder(config, { seed: 5 });
    randomizeParameters(encoder, 8, 0.3);
    const result = await checkModuleGradients(
      encoder,
      host([1, 3, 24, 40], 9),
      (x) => encoder.forward(x),
      (x, params) => samEncoderRef(x, params, config),
      { maxElements: 12 },
    );
    expect(result.ok, result.report).toBe(true);
    encoder.dispose();
  });
});

describe('sam encoder structure', () => {
  it('vit_b parameter count', () => {
    // Derivation for vit_b (C = 768, 12 blocks, a 64x64 token grid, head
    // width 64, 14x14 windows in 8 blocks and 4 global blocks):
    //   patch_embed   768 * 3 * 16 * 16 + 768              =    590,592
    //   pos_embed     64 * 64 * 768                        =  3,145,728
    //   per block     norm1 + norm2      4 * 768           =      3,072
    //                 qkv   768 * 2304 + 2304              =  1,771,776
    //                 proj  768 * 768 + 768                =    590,592
    //                 lin1  768 * 3072 + 3072              =  2,362,368
    //                 lin2  3072 * 768 + 768               =  2,360,064
    //                 sum                                  =  7,087,872
    //   12 blocks                                          = 85,054,464
    //   rel_pos_h, rel_pos_w  windowed 2 * 27 * 64 = 3,456, x 8 = 27,648
    //                         global 2 * 127 * 64 = 16,256, x 4 = 65,024
    //   neck  256 * 768 + 2 * 256 + 256 * 256 * 9 + 2 * 256 =    787,456
    //   total                                              = 89,670,912
    expect(samEncoderParameterCount(SAM_CONFIGS.vit_b)).toBe(89_670_912);
  });

  it('vit_b names and shapes', () => {
    const shapes = samEncoderShapes(SAM_CONFIGS.vit_b);
    expect(shapes.get('patch_embed.proj.weight')).toEqual([768, 3, 16, 16]);
    expect(shapes.get('pos_embed')).toEqual([1, 64, 64, 768]);
    expect(shapes.get('blocks.0.attn.qkv.weight')).toEqual([2304, 768]);
    expect(shapes.get('blocks.0.attn.rel_pos_h')).toEqual([27, 64]);
    expect(shapes.get('blocks.2.attn.rel_pos_w')).toEqual([127, 64]);
    expect(shapes.get('blocks.11.mlp.lin1.weight')).toEqual([3072, 768]);
    expect(shapes.get('neck.0.weight')).toEqual([256, 768, 1, 1]);
    expect(shapes.get('neck.2.weight')).toEqual([256, 256, 3, 3]);
    expect(shapes.get('neck.3.bias')).toEqual([256]);
    expect(shapes.has('blocks.12.norm1.weight')).toBe(false);
  });

  it('vit_l and vit_h shapes', () => {
    const large = samEncoderShapes(SAM_CONFIGS.vit_l);
    expect(large.get('blocks.5.attn.rel_pos_h')).toEqual([127, 64]);
    expect(large.get('blocks.4.attn.rel_pos_h')).toEqual([27, 64]);
    expect(large.has('blocks.23.mlp.lin2.bias')).toBe(true);
    const huge = samEncoderShapes(SAM_CONFIGS.vit_h);
    expect(huge.get('blocks.31.attn.rel_pos_w')).toEqual([127, 80]);
    expect(huge.get('blocks.0.attn.qkv.weight')).toEqual([3840, 1280]);
  });

  it.each(['tiny', 'small'] as const)(
    '%s module matches its shape list',
    (name) => {
      const encoder = new SamImageEncoder(name);
      const shapes = samEncoderShapes(SAM_CONFIGS[name]);
      const names = encoder.namedParameters().map(([key]) => key);
      expect(new Set(names)).toEqual(new Set(shapes.keys()));
      for (const [key, t] of encoder.namedParameters()) {
        expect(t.shape, key).toEqual(shapes.get(key));
      }
      const count = samEncoderParameterCount(SAM_CONFIGS[name]);
      expect(encoder.parameterCount()).toBe(count);
      encoder.dispose();
    },
  );

  it('tiny count matches the pytorch script', () => {
    // scripts/make-sam-fixtures.py prints 69984 for its tiny encoder.
    expect(samEncoderParameterCount(SAM_CONFIGS.tiny)).toBe(69_984);
    const keys = [...checkpoint.keys()].filter((k) =>
      k.startsWith('image_encoder.'),
    );
    expect(keys.length).toBe(samEncoderShapes(SAM_CONFIGS.tiny).size);
  });

  it('key map renames official keys', () => {
    const map = (key: string) => mapCheckpointKey(key, SAM_IMAGE_ENCODER_KEYS);
    expect(map('image_encoder.blocks.3.attn.rel_pos_h')).toBe(
      'blocks.3.attn.rel_pos_h',
    );
    expect(map('image_encoder.neck.1.bias')).toBe('neck.1.bias');
    expect(map('pos_embed')).toBe('pos_embed');
    expect(map('prompt_encoder.no_mask_embed.weight')).toBe(null);
    expect(map('mask_decoder.iou_token.weight')).toBe(null);
  });

  it('loading drops the other sam parts', () => {
    const encoder = new SamImageEncoder('tiny');
    const report = loadWeights(encoder, checkpoint, {
      mapping: SAM_IMAGE_ENCODER_KEYS,
    });
    expect(report.missing).toEqual([]);
    expect(report.unexpected).toEqual([]);
    // Ten mask_downscaling tensors and two keys of other parts.
    expect(report.dropped.length).toBe(12);
    expect(report.dropped).toContain('mask_decoder.iou_token.weight');
    encoder.dispose();
  });

  it('safetensors weights load like the pth', async () => {
    const fromPth = new SamImageEncoder('tiny', { seed: 1 });
    loadWeights(fromPth, readSamCheckpoint(checkpointBytes), {
      mapping: SAM_IMAGE_ENCODER_KEYS,
    });
    const bytes = writeSafetensors(checkpoint);
    const fromSafetensors = new SamImageEncoder('tiny', { seed: 2 });
    loadWeights(fromSafetensors, readSamCheckpoint(bytes), {
      mapping: SAM_IMAGE_ENCODER_KEYS,
    });
    const x = tensor(pattern([1, 3, 64, 48]), [1, 3, 64, 48]);
    const a = await run(() => fromPth.forward(x));
    const b = await run(() => fromSafetensors.forward(x));
    expectClose(b.data, a.data, 0, 0, 'safetensors against pth');
    x.dispose();
    fromPth.dispose();
    fromSafetensors.dispose();
  });

  it('loading rejects another config', () => {
    const encoder = new SamImageEncoder('tiny', { seed: 1 });
    const wider = samConfig('tiny', { embedDim: 64 });
    const other = new SamImageEncoder(wider);
    expect(() =>
      loadWeights(other, checkpoint, { mapping: SAM_IMAGE_ENCODER_KEYS }),
    ).toThrow(/loadCheckpoint: .*mismatch/);
    encoder.dispose();
    other.dispose();
  });

  it('infers the tiny config from the checkpoint', () => {
    const config = inferSamConfig(checkpoint);
    expect(config.name).toBe('tiny');
    expect(config).toEqual(samConfig('tiny'));
  });

  it.each(['vit_b', 'vit_l', 'vit_h'] as const)(
    'infers %s from its shapes',
    (name) => {
      // Shapes only: inferSamConfig reads no values.
      const tensors = new Map<string, HostTensor>();
      for (const [key, shape] of samEncoderShapes(SAM_CONFIGS[name])) {
        tensors.set(`image_encoder.${key}`, {
          dtype: 'float32',
          shape,
          data: new Float32Array(0),
        });
      }
      expect(inferSamConfig(tensors).name).toBe(name);
    },
  );

  it('encoder rejects a bad input', () => {
    const encoder = new SamImageEncoder('tiny');
    const x = zeros([1, 3, 40, 48]);
    expect(() => encoder.forward(x)).toThrow(
      'SamImageEncoder: input [1,3,40,48] must be [B, 3, H, W] with H and ' +
        "W multiples of 16 (the config's size is 256)",
    );
    x.dispose();
    encoder.dispose();
  });

  it('config rejects unknown names and bad heads', () => {
    expect(() => samConfig('vit_x' as 'vit_b')).toThrow(
      'samConfig: unknown config "vit_x"; expected one of vit_b, vit_l, ' +
        'vit_h, tiny, small',
    );
    expect(() => samConfig('tiny', { heads: 5 })).toThrow(
      'samConfig: embedDim 32 is not a multiple of heads 5',
    );
  });
});

describe('mask prompt encoders', () => {
  it('2d matches pytorch', async () => {
    const encoder = new MaskPromptEncoder2d({
      inChannels: 1,
      hiddenChannels: 8,
      embedDim: 12,
    });
    const report = loadWeights(encoder, checkpoint, {
      mapping: SAM_MASK_PROMPT_KEYS,
    });
    expect(report.matched.size).toBe(10);
    const { in_shape: shape, out, shape: outShape } = expected.prompt2d;
    const mask = tensor(pattern(shape), shape);
    const got = await run(() => encoder.forward(mask));
    expect(got.shape).toEqual(outShape);
    expectClose(got.data, out, 1e-4, 0, 'prompt 2d');
    mask.dispose();
    encoder.dispose();
  });

  it('3d matches pytorch', async () => {
    const reference = expected.prompt3d;
    const encoder = new MaskPromptEncoder3d({
      inChannels: 2,
      hiddenChannels: 8,
      embedDim: 12,
    });
    const state = new Map<string, Tensor>();
    for (const [name, { shape, data }] of Object.entries(reference.weights)) {
      state.set(`mask_downscaling.${name}`, tensor(data, shape));
    }
    encoder.loadStateDict(state);
    for (const t of state.values()) t.dispose();
    const mask = tensor(reference.input, reference.in_shape);
    const got = await run(() => encoder.forward(mask));
    expect(got.shape).toEqual(reference.shape);
    expectClose(got.data, reference.out, 1e-4, 0, 'prompt 3d');
    mask.dispose();
    encoder.dispose();
  });

  it.each([
    ['2d', [2, 1, 9, 8]],
    ['3d', [1, 2, 4, 5, 8]],
  ] as const)('%s gradients', async (rank, shape) => {
    const options = { inChannels: shape[1], hiddenChannels: 4, embedDim: 3 };
    const encoder =
      rank === '2d'
        ? new MaskPromptEncoder2d({ ...options, seed: 1 })
        : new MaskPromptEncoder3d({ ...options, seed: 1 });
    randomizeParameters(encoder, 3);
    const result = await checkModuleGradients(
      encoder,
      host([...shape], 4),
      (x) => encoder.forward(x),
      (x, params) => maskDownscalingRef(x, params),
    );
    expect(result.ok, result.report).toBe(true);
    encoder.dispose();
  });

  it('names follow sam', () => {
    const encoder = new MaskPromptEncoder2d();
    const shapes = Object.fromEntries(
      encoder.namedParameters().map(([name, t]) => [name, t.shape]),
    );
    expect(shapes).toEqual({
      'mask_downscaling.0.weight': [4, 1, 2, 2],
      'mask_downscaling.0.bias': [4],
      'mask_downscaling.1.weight': [4],
      'mask_downscaling.1.bias': [4],
      'mask_downscaling.3.weight': [16, 4, 2, 2],
      'mask_downscaling.3.bias': [16],
      'mask_downscaling.4.weight': [16],
      'mask_downscaling.4.bias': [16],
      'mask_downscaling.6.weight': [256, 16, 1, 1],
      'mask_downscaling.6.bias': [256],
    });
    encoder.dispose();
  });

  it('3d rejects a 2d mask', () => {
    const encoder = new MaskPromptEncoder3d({ inChannels: 3, embedDim: 8 });
    const mask = zeros([1, 3, 8, 8]);
    expect(() => encoder.forward(mask)).toThrow(
      'MaskPromptEncoder3d: mask [1,3,8,8] must be [N, C, D, H, W] with ' +
        'C = 3 and every spatial size at least 4',
    );
    mask.dispose();
    encoder.dispose();
  });

  it('rejects hidden channels that are not multiples of 4', () => {
    expect(() => new MaskPromptEncoder2d({ hiddenChannels: 6 })).toThrow(
      'MaskPromptEncoder2d: hiddenChannels must be a positive multiple of ' +
        '4, got 6',
    );
  });
});

/** Runs SAM-style preprocessing in float64: scale, resize, normalise, pad. */
function preprocessRef(
  slices: NDArray,
  imageSize: number,
  range: 'slice' | [number, number],
): NDArray {
  const [n, , h, w] = slices.shape;
  const scale = imageSize / Math.max(h, w);
  const outH = Math.floor(h * scale + 0.5);
  const outW = Math.floor(w * scale + 0.5);
  // PyTorch's linear rule with align_corners false, per axis.
  const taps = (inSize: number, outSize: number, o: number) => {
    const source = Math.max(((o + 0.5) * inSize) / outSize - 0.5, 0);
    const lower = Math.floor(source);
    const upper = Math.min(lower + 1, inSize - 1);
    return { lower, upper, fraction: source - lower };
  };
  const mean = [123.675, 116.28, 103.53];
  const std = [58.395, 57.12, 57.375];
  const out = new Float64Array(n * 3 * imageSize * imageSize);
  for (let s = 0; s < n; s++) {
    const plane = slices.data.subarray(s * h * w, (s + 1) * h * w);
    const low = range === 'slice' ? Math.min(...plane) : range[0];
    const high = range === 'slice' ? Math.max(...plane) : range[1];
    const spread = Math.max(high - low, 1e-12);
    const byte = (y: number, x: number) =>
      ((plane[y * w + x] - low) / spread) * 255;
    for (let y = 0; y < outH; y++) {
      const ty = taps(h, outH, y);
      for (let x = 0; x < outW; x++) {
        const tx = taps(w, outW, x);
        const top =
          byte(ty.lower, tx.lower) * (1 - tx.fraction) +
          byte(ty.lower, tx.upper) * tx.fraction;
        const bottom =
          byte(ty.upper, tx.lower) * (1 - tx.fraction) +
          byte(ty.upper, tx.upper) * tx.fraction;
        const value = top * (1 - ty.fraction) + bottom * ty.fraction;
        for (let c = 0; c < 3; c++) {
          const at = ((s * 3 + c) * imageSize + y) * imageSize + x;
          out[at] = (value - mean[c]) / std[c];
        }
      }
    }
  }
  return { shape: [n, 3, imageSize, imageSize], data: out };
}

describe('sam preprocessing', () => {
  it('resized shape rounds like sam', () => {
    expect(resizedShape(5, 7, 16)).toEqual([11, 16]);
    expect(resizedShape(20, 9, 8)).toEqual([8, 4]);
    expect(resizedShape(512, 512, 1024)).toEqual([1024, 1024]);
    expect(resizedShape(240, 160, 1024)).toEqual([1024, 683]);
  });

  it.each([
    ['enlarged, per slice', [2, 1, 5, 7], 16, 'slice'],
    ['shrunk, per slice', [1, 1, 20, 9], 8, 'slice'],
    ['fixed range', [2, 1, 6, 6], 12, [-1, 2]],
    ['same size', [1, 1, 4, 3], 4, 'slice'],
  ] as const)('matches reference, %s', async (_, shape, size, range) => {
    const slices = host([...shape], 21);
    const rangeArg =
      range === 'slice' ? range : ([...range] as [number, number]);
    const got = samPreprocess(upload(slices), {
      imageSize: size,
      intensityRange: rangeArg,
    });
    const ref = preprocessRef(slices, size, rangeArg);
    expect(got.shape).toEqual(ref.shape);
    expectClose(await got.toArray(), ref.data, 1e-5, 1e-5);
    got.dispose();
  });

  it('constant slice is the normalised zero', async () => {
    const slices = tensor(new Float32Array(6).fill(3), [1, 1, 2, 3]);
    const got = await samPreprocess(slices, { imageSize: 3 }).toArray();
    // The content is 2x3 at the top; the third row is padding (0).
    for (let c = 0; c < 3; c++) {
      const plane = got.subarray(c * 9, (c + 1) * 9);
      const zero = -SAM_PIXEL_MEAN[c] / SAM_PIXEL_STD[c];
      expectClose(plane.subarray(0, 6), new Array(6).fill(zero), 1e-6, 1e-6);
      expectClose(plane.subarray(6), [0, 0, 0], 0, 0);
    }
    slices.dispose();
  });

  it('rejects a volume', () => {
    const volume = zeros([1, 1, 3, 4, 5]);
    expect(() => samPreprocess(volume, { imageSize: 16 })).toThrow(
      'samPreprocess: slices [1,1,3,4,5] must be [N, 1, H, W] with at ' +
        'least one pixel',
    );
    volume.dispose();
  });
});

describe('conv modules', () => {
  it('conv2d gradients with stride and padding', async () => {
    const conv = new Conv2d(2, 3, [3, 2], {
      stride: [2, 1],
      padding: 1,
      seed: 1,
    });
    const result = await checkModuleGradients(
      conv,
      host([2, 2, 5, 4], 3),
      (x) => conv.forward(x),
      (x, params) => {
        const [n, c, h, w] = x.shape;
        const weight = params.get('weight')!;
        const out = conv3dRef(
          { shape: [n, c, 1, h, w], data: x.data },
          { shape: [3, 2, 1, 3, 2], data: weight.data },
          params.get('bias')!,
          { stride: [1, 2, 1], padding: [0, 1, 1], dilation: [1, 1, 1] },
        );
        const [, o, , oh, ow] = out.shape;
        return { shape: [n, o, oh, ow], data: out.data };
      },
    );
    expect(result.ok, result.report).toBe(true);
    conv.dispose();
  });

  it('initialises like pytorch', async () => {
    // Kaiming uniform with a = sqrt(5): bound 1 / sqrt(fanIn), fanIn 2*3*3.
    const conv = new Conv3d(2, 4, 3, { seed: 2 });
    const bound = 1 / Math.sqrt(2 * 27);
    const weight = await conv.weight.toArray();
    const bias = await conv.bias!.toArray();
    expect(Math.max(...weight.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...bias.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(conv.weight.shape).toEqual([4, 2, 3, 3, 3]);
    const plain = new Conv2d(3, 5, 1, { bias: false });
    expect(plain.bias).toBe(null);
    expect(plain.namedParameters().map(([name]) => name)).toEqual(['weight']);
    conv.dispose();
    plain.dispose();
  });

  it('conv2d rejects a wrong channel count', () => {
    const conv = new Conv2d(3, 4, 3);
    const x = zeros([1, 2, 5, 5]);
    expect(() => conv.forward(x)).toThrow(
      'Conv2d: input [1,2,5,5] must be [N, C, H, W] with C = 3 (weight ' +
        '[4,3,3,3])',
    );
    x.dispose();
    conv.dispose();
  });
});
