// Procedural brain phantoms: grid, determinism, exact labels, contrast,
// bias field, noise and per-subject variation.

import { describe, expect, it } from 'vitest';
import {
  PHANTOM_LABELS,
  axisCodes,
  makePhantom,
  preprocess,
  type Volume,
} from '../src/index.js';

function dice(a: ArrayLike<number>, b: ArrayLike<number>, keep: (v: number) => boolean) {
  let countA = 0;
  let countB = 0;
  let both = 0;
  for (let i = 0; i < a.length; i++) {
    const inA = keep(a[i]);
    const inB = keep(b[i]);
    if (inA) countA++;
    if (inB) countB++;
    if (inA && inB) both++;
  }
  return (2 * both) / (countA + countB);
}

function meanByLabel(image: Volume, labels: Volume): Map<number, number> {
  const sums = new Map<number, [number, number]>();
  labels.data.forEach((label, i) => {
    const entry = sums.get(label) ?? [0, 0];
    entry[0] += image.data[i];
    entry[1]++;
    sums.set(label, entry);
  });
  return new Map([...sums].map(([label, [sum, count]]) => [label, sum / count]));
}

/** World x of the centroid of a label. */
function centroidX(labels: Volume, label: number): number {
  const nx = labels.dims[0];
  let sum = 0;
  let count = 0;
  labels.data.forEach((value, index) => {
    if (value !== label) return;
    sum += labels.affine[0] * (index % nx) + labels.affine[12];
    count++;
  });
  return sum / count;
}

describe('makePhantom', () => {
  it('cube grid is RAS and centred', () => {
    const { image, labels } = makePhantom({ size: 24, seed: 1 });
    expect(image.dims).toEqual([24, 24, 24]);
    expect(labels.dims).toEqual([24, 24, 24]);
    expect(axisCodes(image.affine)).toBe('RAS');
    const spacing = 220 / 24;
    expect(image.spacing[0]).toBeCloseTo(spacing, 12);
    expect(image.spacing[2]).toBeCloseTo(spacing, 12);
    // Index 11.5 (the grid centre) is the world origin.
    for (let axis = 0; axis < 3; axis++) {
      expect(image.affine[12 + axis] + spacing * 11.5).toBeCloseTo(0, 9);
    }
    expect(Array.from(labels.affine)).toEqual(Array.from(image.affine));
  });

  it('size is D, H, W', () => {
    const { image } = makePhantom({ size: [10, 12, 14], seed: 1 });
    expect(image.dims).toEqual([14, 12, 10]);
    expect(image.spacing[2]).toBeCloseTo(22, 12);
    const tiny = makePhantom({ size: [3, 2, 1], seed: 1 });
    expect(tiny.image.dims).toEqual([1, 2, 3]);
  });

  it('same seed, same volumes', () => {
    const first = makePhantom({ size: [9, 11, 13], seed: 42 });
    const second = makePhantom({ size: [9, 11, 13], seed: 42 });
    expect(Array.from(second.image.data)).toEqual(Array.from(first.image.data));
    expect(Array.from(second.labels.data)).toEqual(Array.from(first.labels.data));
  });

  it('seeds differ like subjects', () => {
    const first = makePhantom({ size: 40, seed: 1 }).labels.data;
    const second = makePhantom({ size: 40, seed: 2 }).labels.data;
    // Brain (labels 1 to 14) overlaps well; white matter and the
    // ventricles less, as between two real subjects.
    const brain = dice(first, second, (value) => value >= 1 && value <= 14);
    const white = dice(first, second, (value) => value === 1);
    const ventricles = dice(first, second, (value) => value === 4 || value === 5);
    expect(brain).toBeGreaterThan(0.85);
    expect(brain).toBeLessThan(0.99);
    expect(white).toBeGreaterThan(0.6);
    expect(white).toBeLessThan(0.95);
    expect(ventricles).toBeGreaterThan(0.2);
    expect(ventricles).toBeLessThan(0.9);
  });

  it('labels are exact ids', () => {
    const { labels, names } = makePhantom({ size: 48, seed: 3 });
    const values = new Set(labels.data);
    expect([...values].sort((a, b) => a - b)).toEqual(
      Array.from({ length: 17 }, (_, i) => i),
    );
    expect(names).toEqual(PHANTOM_LABELS.map((label) => label.name));
    expect(labels.datatype).toBe('uint8');
  });

  it('structures merge into parents', () => {
    const full = makePhantom({ size: 20, seed: 5 }).labels.data;
    for (const structures of [1, 3, 7]) {
      const { labels, names } = makePhantom({ size: 20, seed: 5, structures });
      expect(names).toHaveLength(structures + 1);
      let mismatches = 0;
      full.forEach((label, i) => {
        let expected = label;
        while (expected > structures) expected = PHANTOM_LABELS[expected].parent;
        if (labels.data[i] !== expected) mismatches++;
      });
      expect(mismatches, `structures ${structures}`).toBe(0);
      expect(Math.max(...labels.data)).toBe(structures);
    }
  });

  it('T1 contrast of tissues', () => {
    const { image, labels } = makePhantom({
      size: 40,
      seed: 7,
      bias: false,
      noise: false,
    });
    const mean = meanByLabel(image, labels);
    expect(mean.get(1)!).toBeGreaterThan(mean.get(2)! + 150);
    expect(mean.get(2)!).toBeGreaterThan(mean.get(3)! + 100);
    expect(mean.get(4)!).toBeLessThan(mean.get(2)!);
    expect(mean.get(15)!).toBeLessThan(mean.get(2)!);
    expect(mean.get(0)!).toBeLessThan(50);
  });

  it('interior intensity is constant', () => {
    // Without bias and noise, only the blur changes intensities, and a
    // voxel whose 26 neighbours share its label keeps its tissue value.
    const { image, labels } = makePhantom({
      size: 32,
      seed: 7,
      bias: false,
      noise: false,
    });
    const [nx, ny, nz] = image.dims;
    const values: number[] = [];
    for (let k = 1; k < nz - 1; k++) {
      for (let j = 1; j < ny - 1; j++) {
        for (let i = 1; i < nx - 1; i++) {
          const index = i + nx * (j + ny * k);
          if (labels.data[index] !== 1) continue;
          let uniform = true;
          for (let dz = -1; dz <= 1 && uniform; dz++) {
            for (let dy = -1; dy <= 1 && uniform; dy++) {
              for (let dx = -1; dx <= 1 && uniform; dx++) {
                const neighbour = index + dx + nx * (dy + ny * dz);
                if (labels.data[neighbour] !== 1) uniform = false;
              }
            }
          }
          if (uniform) values.push(image.data[index]);
        }
      }
    }
    expect(values.length).toBeGreaterThan(100);
    const first = values[0];
    expect(first).toBeGreaterThan(900);
    expect(first).toBeLessThan(1100);
    for (const value of values) expect(value).toBeCloseTo(first, 2);
  });

  it('bias field is smooth', () => {
    const options = { size: 32, seed: 11, noise: false } as const;
    const biased = makePhantom(options).image.data;
    const flat = makePhantom({ ...options, bias: false }).image.data;
    const nx = 32;
    let low = Infinity;
    let high = -Infinity;
    let steepest = 0;
    for (let index = 0; index < biased.length - 1; index++) {
      if (flat[index] < 100 || flat[index + 1] < 100) continue;
      const ratio = biased[index] / flat[index];
      low = Math.min(low, ratio);
      high = Math.max(high, ratio);
      if ((index + 1) % nx !== 0) {
        const next = biased[index + 1] / flat[index + 1];
        steepest = Math.max(steepest, Math.abs(next - ratio));
      }
    }
    // Measured for seed 11: the ratio spans 0.78 to 1.09, and neighbours
    // (6.9 mm apart) differ by at most 0.017.
    expect(high / low).toBeGreaterThan(1.1);
    expect(high / low).toBeLessThan(2);
    expect(steepest).toBeLessThan(0.03);
  });

  it('background noise is Rician', () => {
    const { image, labels } = makePhantom({ size: 48, seed: 13 });
    // Far from the head the signal is 0, so the magnitude of complex
    // Gaussian noise is Rayleigh: mean sigma * sqrt(pi / 2), sigma = 30.
    const background: number[] = [];
    const [nx, ny] = image.dims;
    labels.data.forEach((label, index) => {
      const i = index % nx;
      const j = Math.floor(index / nx) % ny;
      const corner = i < 3 && j < 3;
      if (label === 0 && corner) background.push(image.data[index]);
    });
    expect(background.length).toBeGreaterThan(300);
    const mean = background.reduce((sum, value) => sum + value, 0) / background.length;
    expect(mean).toBeGreaterThan(30 * Math.sqrt(Math.PI / 2) * 0.9);
    expect(mean).toBeLessThan(30 * Math.sqrt(Math.PI / 2) * 1.1);
    expect(Math.min(...background)).toBeGreaterThanOrEqual(0);
  });

  it('left structures at -x', () => {
    const { labels } = makePhantom({ size: 48, seed: 17 });
    // PHANTOM_LABELS: 4 and 5 lateral ventricles L and R, 6 and 7 thalami.
    expect(centroidX(labels, 4)).toBeLessThan(-3);
    expect(centroidX(labels, 5)).toBeGreaterThan(3);
    expect(centroidX(labels, 6)).toBeLessThan(-3);
    expect(centroidX(labels, 7)).toBeGreaterThan(3);
  });

  it('preprocessing keeps its labels', () => {
    const phantom = makePhantom({ size: 40, seed: 19 });
    const out = preprocess(phantom.image, { size: 24, labels: phantom.labels });
    const present = [...new Set(phantom.labels.data)].sort((a, b) => a - b);
    expect(present.length).toBeGreaterThan(12);
    expect(out.labels!.labelTable).toEqual(present);
    expect(out.image.boundsMm.max[1] - out.image.boundsMm.min[1]).toBeGreaterThan(
      180,
    );
  });

  it('rejects bad options', () => {
    expect(() => makePhantom({ size: [4, 0, 4], seed: 1 })).toThrow(
      'makePhantom: size [4, 0, 4] must be positive integers [D, H, W]',
    );
    expect(() => makePhantom({ size: 8, seed: 1, structures: 17 })).toThrow(
      'makePhantom: structures 17 must be an integer from 1 to 16',
    );
    expect(() => makePhantom({ size: 8, seed: 1, spacingMm: [1, -1, 1] })).toThrow(
      'makePhantom: spacingMm [1, -1, 1] must be positive',
    );
  });
});
