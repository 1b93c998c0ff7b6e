// Augmentation on the device: label values and volumes kept, mirroring
// exact, bitwise reproducible from (seed, step), one-hot labels still a
// partition of unity, and the trainer hook drawing the same transforms.

import { beforeAll, describe, expect, it } from 'vitest';
import {
  affineFlow,
  augment,
  createAugmenter,
  makePhantom,
  oneHot,
  tensor,
  warp,
  type Tensor,
} from '../src/index.js';
import { iterationRandom } from '../src/pipeline/train/data.js';
import { device, expectClose } from './helpers.js';

beforeAll(device);

const SIZE = 48;

/** Returns a 48^3 phantom: its image scaled to [0, 1] and its 16 labels. */
function phantomTensors(seed: number): { image: Tensor; labels: Tensor } {
  const phantom = makePhantom({ size: SIZE, seed });
  const peak = phantom.image.data.reduce((m, v) => Math.max(m, v), 0);
  const values = phantom.image.data.map((v) => v / peak);
  const shape = [1, 1, SIZE, SIZE, SIZE];
  return {
    image: tensor(values, shape),
    labels: tensor(phantom.labels.data, shape),
  };
}

function counts(values: ArrayLike<number>): Map<number, number> {
  const result = new Map<number, number>();
  for (let i = 0; i < values.length; i++) {
    result.set(values[i], (result.get(values[i]) ?? 0) + 1);
  }
  return result;
}

// White matter, grey matter, CSF, skull and scalp: about 4,000 to 6,000 voxels
// each at 48^3, so nearest sampling moves their counts by about 2%.
const LARGE = [1, 2, 3, 15, 16];

describe('augment', () => {
  it('augment keeps label values', async () => {
    const { image, labels } = phantomTensors(1);
    const before = new Set(await labels.toArray());
    for (const step of [0, 1, 2]) {
      const result = augment(image, labels, { seed: 5, step });
      const after = await result.labels!.toArray();
      const unknown = [...new Set(after)].filter((v) => !before.has(v));
      expect(unknown, `new label values at step ${step}`).toEqual([]);
      [result.image, result.labels!, result.flow].forEach((t) => t.dispose());
    }
    image.dispose();
    labels.dispose();
  });

  it('augment volumes follow the scale', async () => {
    // Without the elastic part, a structure's voxel count scales by the
    // determinant of the content transform; nearest sampling adds noise
    // at the boundary.
    const { image, labels } = phantomTensors(2);
    const original = counts(await labels.toArray());
    for (const step of [0, 1, 2, 3, 4, 5]) {
      const result = augment(image, labels, {
        seed: 11,
        step,
        rotationDeg: 12,
        scaleRange: [0.88, 1.12],
        elasticMagnitude: 0,
      });
      const moved = counts(await result.labels!.toArray());
      const expected = result.transform.volumeRatio;
      const { scale } = result.transform;
      expect(expected).toBeCloseTo(scale[0] * scale[1] * scale[2], 12);
      for (const label of LARGE) {
        const ratio = (moved.get(label) ?? 0) / original.get(label)!;
        const message = `label ${label} at step ${step}: ratio ${ratio}`;
        expect(Math.abs(ratio / expected - 1), message).toBeLessThan(0.04);
      }
      [result.image, result.labels!, result.flow].forEach((t) => t.dispose());
    }
    image.dispose();
    labels.dispose();
  });

  it('augment elastic volumes within 15%', async () => {
    const { image, labels } = phantomTensors(3);
    const original = counts(await labels.toArray());
    for (const step of [0, 1, 2, 3]) {
      // 1 voxel at 48^3 is about as strong as the default 2 at 96^3.
      const result = augment(image, labels, {
        seed: 4,
        step,
        elasticMagnitude: 1,
      });
      const moved = counts(await result.labels!.toArray());
      const expected = result.transform.volumeRatio;
      for (const label of LARGE) {
        const ratio = (moved.get(label) ?? 0) / original.get(label)!;
        const message = `label ${label} at step ${step}: ratio ${ratio}`;
        expect(Math.abs(ratio / expected - 1), message).toBeLessThan(0.15);
      }
      // The elastic part moves voxels beyond the affine flow.
      const affine = affineFlow(result.transform.matrix, image.shape);
      const elastic = await result.flow.sub(affine).toArray();
      const largest = elastic.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      expect(largest, 'largest elastic displacement').toBeGreaterThan(1);
      const tensors = [result.image, result.labels!, result.flow, affine];
      tensors.forEach((t) => t.dispose());
    }
    image.dispose();
    labels.dispose();
  });

  it('augment is reproducible', async () => {
    const { image, labels } = phantomTensors(4);
    const first = augment(image, labels, { seed: 3, step: 17 });
    const second = augment(image, labels, { seed: 3, step: 17 });
    const other = augment(image, labels, { seed: 3, step: 18 });
    const pairs: [string, Tensor, Tensor][] = [
      ['image', first.image, second.image],
      ['labels', first.labels!, second.labels!],
      ['flow', first.flow, second.flow],
    ];
    for (const [name, a, b] of pairs) {
      const same = Array.from(await a.toArray());
      expect(Array.from(await b.toArray()), name).toEqual(same);
    }
    expect(second.transform).toEqual(first.transform);
    const otherFlow = Array.from(await other.flow.toArray());
    expect(otherFlow).not.toEqual(Array.from(await first.flow.toArray()));
    const results = [first, second, other];
    const tensors = results.flatMap((r) => [r.image, r.labels!, r.flow]);
    [image, labels, ...tensors].forEach((t) => t.dispose());
  });

  it('augment mirrors exactly', async () => {
    const { image, labels } = phantomTensors(5);
    const values = await image.toArray();
    const result = augment(image, labels, {
      seed: 1,
      step: 0,
      mirrorAxes: [1, 2],
      mirrorProbability: 1,
      rotationDeg: 0,
      scaleRange: [1, 1],
      elasticMagnitude: 0,
    });
    expect(result.transform.mirrored).toEqual([false, true, true]);
    const moved = await result.image.toArray();
    for (let d = 0; d < SIZE; d += 5) {
      for (let h = 0; h < SIZE; h++) {
        for (let w = 0; w < SIZE; w++) {
          const source = (d * SIZE + (SIZE - 1 - h)) * SIZE + (SIZE - 1 - w);
          expect(moved[(d * SIZE + h) * SIZE + w]).toBe(values[source]);
        }
      }
    }
    [image, labels, result.image, result.labels!, result.flow].forEach((t) =>
      t.dispose(),
    );
  });

  it('augment image without labels', async () => {
    const { image, labels } = phantomTensors(6);
    const both = augment(image, labels, { seed: 2, step: 3 });
    const alone = augment(image, undefined, { seed: 2, step: 3 });
    expect(alone.labels).toBeUndefined();
    const expected = Array.from(await both.image.toArray());
    expect(Array.from(await alone.image.toArray())).toEqual(expected);
    // The returned flow repeats the augmentation.
    const again = warp(image, alone.flow);
    expect(Array.from(await again.toArray())).toEqual(expected);
    const tensors = [both.image, both.labels!, both.flow, alone.image];
    [image, labels, ...tensors, alone.flow, again].forEach((t) => t.dispose());
  });

  it('augment one-hot labels', async () => {
    const { image, labels } = phantomTensors(7);
    const encoded = oneHot(labels, 17);
    const result = augment(image, encoded, { seed: 8, step: 1 });
    const nearest = augment(image, labels, { seed: 8, step: 1 });
    expect(result.labels!.shape).toEqual([1, 17, SIZE, SIZE, SIZE]);
    const soft = await result.labels!.toArray();
    const hard = await nearest.labels!.toArray();
    const voxels = SIZE ** 3;
    const totals = new Float64Array(voxels);
    let agree = 0;
    for (let v = 0; v < voxels; v++) {
      let best = 0;
      for (let k = 0; k < 17; k++) {
        const p = soft[k * voxels + v];
        totals[v] += p;
        if (p > soft[best * voxels + v]) best = k;
      }
      if (best === hard[v]) agree += 1;
    }
    expectClose(totals, new Float64Array(voxels).fill(1), 0, 1e-5, 'sums');
    const smallest = soft.reduce((m, v) => Math.min(m, v), Infinity);
    expect(smallest).toBeGreaterThanOrEqual(0);
    expect(agree / voxels, 'argmax equal to nearest').toBeGreaterThan(0.9);
    const tensors = [result.image, result.labels!, result.flow];
    [image, labels, encoded, ...tensors].forEach((t) => t.dispose());
    [nearest.image, nearest.labels!, nearest.flow].forEach((t) => t.dispose());
  });

  it('augment rejects bad input', () => {
    const image = tensor(new Float32Array(2 * 27), [2, 1, 3, 3, 3]);
    const single = tensor(new Float32Array(27), [1, 1, 3, 3, 3]);
    const labels = tensor(new Float32Array(24), [1, 1, 2, 3, 4]);
    const step = { seed: 1, step: 0 };
    expect(() => augment(image, undefined, step)).toThrow(
      'augment: image [2,1,3,3,3] must be [1, C, D, H, W]',
    );
    expect(() => augment(single, labels, step)).toThrow(
      'augment: labels [1,1,2,3,4] must be [1, L, 3, 3, 3] on the grid of ' +
        'image [1,1,3,3,3]',
    );
    const badAxes = { ...step, mirrorAxes: [3] };
    expect(() => augment(single, undefined, badAxes)).toThrow(
      'augment: mirrorAxes [3] must list axes 0 (D), 1 (H) or 2 (W)',
    );
    const badScale = { ...step, scaleRange: [1.2, 0.8] as [number, number] };
    expect(() => augment(single, undefined, badScale)).toThrow(
      'augment: scaleRange [1.2,0.8] must be [min, max] with 0 < min <= max',
    );
    expect(() => augment(single, undefined, { seed: 1, step: -1 })).toThrow(
      'augment: seed 1 and step -1 must be integers, step >= 0',
    );
    expect(() => createAugmenter({ elasticControlPoints: 1 })).toThrow(
      'createAugmenter: elasticControlPoints 1 must be an integer >= 2',
    );
    [image, single, labels].forEach((t) => t.dispose());
  });
});

describe('createAugmenter', () => {
  it('createAugmenter matches augment', async () => {
    const { image, labels } = phantomTensors(8);
    const hook = createAugmenter({ rotationDeg: 15 });
    const random = iterationRandom(21, 4);
    const hooked = hook(image, labels, 4, { random, role: 'atlas' });
    const options = { seed: 21, step: 4, rotationDeg: 15 };
    const direct = augment(image, labels, options);
    const expectedImage = Array.from(await direct.image.toArray());
    expect(Array.from(await hooked.image.toArray())).toEqual(expectedImage);
    const expectedLabels = Array.from(await direct.labels!.toArray());
    expect(Array.from(await hooked.labels!.toArray())).toEqual(expectedLabels);
    const tensors = [hooked.image, hooked.labels!, direct.image];
    [image, labels, ...tensors, direct.labels!, direct.flow].forEach((t) =>
      t.dispose(),
    );
  });

  it('createAugmenter skips other roles', () => {
    const { image, labels } = phantomTensors(9);
    const hook = createAugmenter({ roles: ['atlas'] });
    const random = iterationRandom(1, 0);
    const target = hook(image, undefined, 0, { random, role: 'target' });
    expect(target.image).toBe(image);
    expect(target.labels).toBeUndefined();
    image.dispose();
    labels.dispose();
  });
});
