// Shared test helpers: device setup and tolerance checks.

import { expect } from 'vitest';
import { ready, tensor, type Tensor } from '../src/index.js';
import { Random } from '../src/random.js';
import type { NDArray } from '../src/reference/ndarray.js';

/** Acquires the device; a missing adapter fails the suite loudly. */
export async function device(): Promise<string> {
  const info = await ready();
  return info.adapter;
}

/**
 * Asserts |got - ref| <= rtol * max|ref| + atol elementwise and reports the
 * worst element on failure.
 */
export function expectClose(
  got: ArrayLike<number>,
  ref: ArrayLike<number>,
  rtol = 1e-5,
  atol = 1e-6,
  what = 'values',
): void {
  expect(got.length, `${what}: length`).toBe(ref.length);
  let scale = 0;
  for (let i = 0; i < ref.length; i++) scale = Math.max(scale, Math.abs(ref[i]));
  const tolerance = rtol * scale + atol;
  let worst = 0;
  let worstAt = -1;
  for (let i = 0; i < ref.length; i++) {
    const error = Math.abs(got[i] - ref[i]);
    if (!(error <= worst)) {
      worst = Number.isNaN(error) ? Infinity : error;
      worstAt = i;
    }
  }
  const detail =
    worstAt >= 0
      ? `worst at ${worstAt}: got ${got[worstAt]}, expected ${ref[worstAt]}`
      : 'no elements';
  expect(worst, `${what}: max error over tolerance ${tolerance} (${detail})`).toBeLessThanOrEqual(
    tolerance,
  );
}

/** Seeded standard-normal values of a shape, as float32-representable doubles. */
export function randomValues(shape: readonly number[], seed: number): Float64Array {
  const random = new Random(seed);
  const size = shape.reduce((n, d) => n * d, 1);
  return Float64Array.from({ length: size }, () => Math.fround(random.normal()));
}

export function hostAndDevice(shape: number[], seed: number): [NDArray, Tensor] {
  const data = randomValues(shape, seed);
  return [{ shape: [...shape], data }, tensor(Float32Array.from(data), shape)];
}
