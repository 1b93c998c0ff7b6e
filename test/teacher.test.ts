import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Random,
  readTorchCheckpoint,
  tensor,
  zeros,
  type Tensor,
} from '../src/index.js';
import { SAM_CONFIGS } from '../src/nn/sam/config.js';
import {
  RANDOM_TEACHER,
  checkpointIdentity,
  createSamTeacher,
  encoderBytesPerSlice,
  extractTeacherFeatures,
  type SamTeacherOptions,
} from '../src/pipeline/teacher.js';
import { DiskFeatureCache } from '../src/pipeline/teacher-cache.js';
import { device, expectClose } from './helpers.js';

beforeAll(device);

const FIXTURES = fileURLToPath(new URL('./fixtures/sam/', import.meta.url));
const checkpointBytes = new Uint8Array(readFileSync(`${FIXTURES}tiny.pth`));

let cacheRoot = '';
beforeAll(async () => {
  cacheRoot = await mkdtemp(join(tmpdir(), 'rrl-medsam-teacher-'));
});
afterAll(async () => {
  await rm(cacheRoot, { recursive: true, force: true });
});

/** Makes a seeded volume [1, 1, D, H, W]: a smooth blob plus noise. */
function volume(depth: number, height: number, width: number, seed = 1) {
  const random = new Random(seed);
  const data = new Float32Array(depth * height * width);
  let i = 0;
  for (let z = 0; z < depth; z++) {
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const blob = Math.exp(-((y - height / 2) ** 2 + (x - 4) ** 2) / 20);
        data[i++] = 100 * blob * (1 + z / depth) + 5 * random.normal();
      }
    }
  }
  return tensor(data, [1, 1, depth, height, width]);
}

function tinyTeacher(options: SamTeacherOptions = {}) {
  return createSamTeacher({ config: 'tiny', batchSize: 2, ...options });
}

describe('teacher without a checkpoint', () => {
  it('is marked as randomly initialised', () => {
    const teacher = tinyTeacher({ seed: 3 });
    expect(teacher.info.teacher).toBe('random init (no SAM checkpoint)');
    expect(teacher.info.teacher).toBe(RANDOM_TEACHER);
    expect(teacher.info.randomInit).toBe(true);
    expect(teacher.info.weights).toBe('random-seed-3');
    teacher.dispose();
  });

  it('defaults to the small config at 256', () => {
    const teacher = createSamTeacher();
    expect(teacher.info.config).toBe('small');
    expect(teacher.info.imageSize).toBe(256);
    expect(teacher.info.featureSize).toBe(16);
    expect(teacher.info.channels).toBe(256);
    expect(teacher.info.teacher).toBe(RANDOM_TEACHER);
    teacher.dispose();
  });

  it('same seed gives the same features', async () => {
    // Cache keys name a random teacher by its seed, so the seed must fix
    // the weights.
    const x = volume(1, 8, 6);
    const results = [];
    for (let run = 0; run < 2; run++) {
      const teacher = tinyTeacher({ seed: 4 });
      results.push(await extractTeacherFeatures(teacher, x));
      teacher.dispose();
    }
    expectClose(results[1].data, results[0].data, 0, 0);
    for (const result of results) result.features.dispose();
    x.dispose();
  });

  it('extraction metadata says random init', async () => {
    const teacher = tinyTeacher();
    const x = volume(2, 9, 7);
    const result = await extractTeacherFeatures(teacher, x);
    expect(result.meta.teacher).toBe(RANDOM_TEACHER);
    expect(result.meta.randomInit).toBe(true);
    result.features.dispose();
    x.dispose();
    teacher.dispose();
  });
});

describe('teacher feature extraction', () => {
  it('stacks every axial slice in order', async () => {
    const teacher = tinyTeacher();
    const x = volume(5, 20, 12);
    const progress: [number, number][] = [];
    const result = await extractTeacherFeatures(teacher, x, {
      onProgress: (done, total) => progress.push([done, total]),
    });
    expect(result.features.shape).toEqual([32, 5, 16, 16]);
    expect(progress).toEqual([
      [2, 5],
      [4, 5],
      [5, 5],
    ]);
    // A 20x12 slice resized to 256 rows keeps 154 columns: 10 cells.
    expect(result.meta.validSize).toEqual([16, 10]);
    expect(result.meta.sliceShape).toEqual([20, 12]);
    expect(result.meta.slices).toBe(5);

    // Slice 3 encoded on its own gives feature plane 3.
    const host = await x.toArray();
    const plane = host.subarray(3 * 20 * 12, 4 * 20 * 12);
    const alone = tensor(plane, [1, 1, 20, 12]);
    const single = teacher.encodeSlices(alone);
    const expected = await single.toArray();
    const got = new Float32Array(32 * 256);
    for (let c = 0; c < 32; c++) {
      const from = (c * 5 + 3) * 256;
      got.set(result.data.subarray(from, from + 256), c * 256);
    }
    expectClose(got, expected, 1e-5, 1e-5, 'slice 3');
    const onDevice = await result.features.toArray();
    expectClose(onDevice, result.data, 0, 0, 'device copy');
    for (const t of [alone, single, result.features, x]) t.dispose();
    teacher.dispose();
  });

  it('checkpoint weights set config and label', async () => {
    const checkpoint = {
      tensors: readTorchCheckpoint(checkpointBytes),
      identity: await checkpointIdentity(checkpointBytes),
    };
    expect(checkpoint.identity).toMatch(/^sha256:[0-9a-f]{64}$/);
    const teacher = createSamTeacher({ checkpoint });
    expect(teacher.info.config).toBe('tiny');
    expect(teacher.info.randomInit).toBe(false);
    expect(teacher.info.teacher).toBe(`SAM tiny (${checkpoint.identity})`);
    const random = tinyTeacher();
    const x = volume(1, 8, 8);
    const loaded = await extractTeacherFeatures(teacher, x);
    const initial = await extractTeacherFeatures(random, x);
    expect(loaded.meta.cacheKey).not.toBe(initial.meta.cacheKey);
    let difference = 0;
    loaded.data.forEach((v, i) => {
      difference = Math.max(difference, Math.abs(v - initial.data[i]));
    });
    expect(difference).toBeGreaterThan(0.1);
    for (const t of [loaded.features, initial.features, x]) t.dispose();
    teacher.dispose();
    random.dispose();
  });

  it('batch size fits the binding limit', () => {
    // vit_b at 1024: the MLP hidden activations of 4096 tokens x 3072 are
    // the largest binding, 48 MiB per slice, so two slices fit 128 MiB.
    const bytes = encoderBytesPerSlice(SAM_CONFIGS.vit_b, 1024);
    expect(bytes).toBe(4096 * 3072 * 4);
    expect(Math.floor(128 * 2 ** 20 / bytes)).toBe(2);
  });

  it('volume range covers a constant volume', async () => {
    const teacher = tinyTeacher({ intensityRange: 'volume' });
    const x = tensor(new Float32Array(2 * 6 * 6).fill(7), [1, 1, 2, 6, 6]);
    const result = await extractTeacherFeatures(teacher, x);
    expect(result.meta.intensityRange).toBe('volume');
    expect(result.data.every((v) => Number.isFinite(v))).toBe(true);
    result.features.dispose();
    x.dispose();
    teacher.dispose();
  });

  it('volume range needs the range for single slices', () => {
    const teacher = tinyTeacher({ intensityRange: 'volume' });
    const slices = zeros([1, 1, 6, 6]);
    expect(() => teacher.encodeSlices(slices)).toThrow(
      "SamTeacher.encodeSlices: the teacher maps the volume's intensity " +
        'range to 0-255; pass that range as [low, high]',
    );
    slices.dispose();
    teacher.dispose();
  });

  it('rejects a multi-channel volume', async () => {
    const teacher = tinyTeacher();
    const x = zeros([1, 2, 3, 8, 8]);
    await expect(extractTeacherFeatures(teacher, x)).rejects.toThrow(
      'extractTeacherFeatures: volume [1,2,3,8,8] must be [1, 1, D, H, W] ' +
        '(one single-channel volume)',
    );
    x.dispose();
    teacher.dispose();
  });
});

describe('teacher feature cache', () => {
  it('second extraction reads the cache', async () => {
    const cache = new DiskFeatureCache(join(cacheRoot, 'reuse'));
    const x = volume(3, 10, 14, 7);
    let calls = 0;
    const onProgress = () => {
      calls += 1;
    };

    const first = tinyTeacher({ seed: 5 });
    const computed = await extractTeacherFeatures(first, x, {
      cache,
      onProgress,
    });
    first.dispose();
    expect(computed.fromCache).toBe(false);
    expect(calls).toBe(2);
    expect(cache.counts).toEqual({ hits: 0, misses: 1, writes: 1 });

    // A new teacher with the same config and seed has the same key.
    const second = tinyTeacher({ seed: 5 });
    calls = 0;
    const reused = await extractTeacherFeatures(second, x, {
      cache,
      onProgress,
    });
    second.dispose();
    expect(reused.fromCache).toBe(true);
    expect(calls).toBe(0);
    expect(cache.counts.hits).toBe(1);
    expect(reused.meta).toEqual(computed.meta);
    expect(reused.meta.teacher).toBe(RANDOM_TEACHER);
    expectClose(reused.data, computed.data, 0, 0, 'cached features');
    expectClose(await reused.features.toArray(), computed.data, 0, 0);
    for (const t of [computed.features, reused.features, x]) t.dispose();
  });

  it('keys change with volume, seed and range', async () => {
    const cache = new DiskFeatureCache(join(cacheRoot, 'keys'));
    const keys = new Set<string>();
    const run = async (x: Tensor, options: SamTeacherOptions) => {
      const teacher = tinyTeacher(options);
      const result = await extractTeacherFeatures(teacher, x, { cache });
      teacher.dispose();
      result.features.dispose();
      expect(result.fromCache).toBe(false);
      keys.add(result.meta.cacheKey);
    };
    const a = volume(1, 6, 6, 1);
    const b = volume(1, 6, 6, 2);
    await run(a, {});
    await run(b, {});
    await run(a, { seed: 9 });
    await run(a, { intensityRange: 'volume' });
    await run(a, { imageSize: 128 });
    expect(keys.size).toBe(5);
    expect(cache.counts.writes).toBe(5);
    const files = await readdir(join(cacheRoot, 'keys'));
    expect(files.filter((f) => f.endsWith('.safetensors')).length).toBe(5);
    a.dispose();
    b.dispose();
  });

  it('recomputes an unreadable entry', async () => {
    const cache = new DiskFeatureCache(join(cacheRoot, 'broken'));
    const x = volume(1, 6, 6, 3);
    const teacher = tinyTeacher();
    const first = await extractTeacherFeatures(teacher, x, { cache });
    await writeFile(cache.pathOf(first.meta.cacheKey), 'not safetensors');
    const again = await extractTeacherFeatures(teacher, x, { cache });
    expect(again.fromCache).toBe(false);
    expectClose(again.data, first.data, 0, 0);
    const third = await extractTeacherFeatures(teacher, x, { cache });
    expect(third.fromCache).toBe(true);
    for (const t of [first.features, again.features, third.features, x]) {
      t.dispose();
    }
    teacher.dispose();
  });

  it('rejects keys that are not hex', () => {
    const cache = new DiskFeatureCache(cacheRoot);
    expect(() => cache.pathOf('../escape')).toThrow(
      'DiskFeatureCache: key "../escape" is invalid; expected 16 to 128 ' +
        'lowercase hex digits',
    );
  });
});
