import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  noGrad,
  readTorchCheckpoint,
  tensor,
  type Tensor,
} from '../src/index.js';
import { SamImageEncoder } from '../src/nn/sam/encoder.js';
import { SAM_IMAGE_ENCODER_KEYS, loadWeights } from '../src/nn/sam/key-map.js';
import { device, expectClose } from './helpers.js';

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
const checkpoint = readTorchCheckpoint(
  new Uint8Array(readFileSync(`${FIXTURES}tiny.pth`)),
);

/** The input formula of scripts/make-sam-fixtures.py (pattern()). */
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
