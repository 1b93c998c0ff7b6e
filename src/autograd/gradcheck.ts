// Gradient checking: the device's autograd gradients against central finite
// differences of a float64 CPU reference of the same function.
//
// Both sides reduce the output to a scalar with the same random weights,
// L = sum(out * w), so one backward pass gives the whole input gradient.

import { tensor, tidy, type Tensor } from '../tensor.js';
import { mul } from '../ops/elementwise.js';
import { sum } from '../ops/reduce.js';
import { backward } from './backward.js';
import { Random } from '../random.js';
import type { NDArray } from '../reference/ndarray.js';

export interface GradCheckInput {
  shape: number[];
  /** Values; drawn from a standard normal with `seed` when omitted. */
  data?: ArrayLike<number>;
  seed?: number;
  /** False for inputs that take no gradient (labels, indices). */
  requiresGrad?: boolean;
}

export interface GradCheckOptions {
  /** Step of the central difference. */
  eps?: number;
  rtol?: number;
  atol?: number;
  seed?: number;
}

export interface GradCheckResult {
  /** Per input: the largest |autograd - finite difference|. */
  maxAbsError: number[];
  /** Per input: the tolerance rtol * max|fd| + atol it was held to. */
  tolerance: number[];
  ok: boolean;
  /** Human-readable description of the worst element of each input. */
  report: string;
}

function inputValues(input: GradCheckInput, fallbackSeed: number): Float64Array {
  const size = input.shape.reduce((n, d) => n * d, 1);
  if (input.data) return Float64Array.from(input.data);
  const random = new Random(input.seed ?? fallbackSeed);
  return Float64Array.from({ length: size }, () => random.normal());
}

function weightedSum(out: NDArray, weights: Float64Array): number {
  let total = 0;
  for (let i = 0; i < out.data.length; i++) total += out.data[i] * weights[i];
  return total;
}

/**
 * Checks `device` (an op on tensors) against `reference` (the same op on
 * float64 arrays). Returns per-input errors; does not throw on a mismatch.
 */
export async function gradCheck(
  device: (...inputs: Tensor[]) => Tensor,
  reference: (...inputs: NDArray[]) => NDArray,
  inputs: GradCheckInput[],
  options: GradCheckOptions = {},
): Promise<GradCheckResult> {
  const eps = options.eps ?? 1e-5;
  const rtol = options.rtol ?? 1e-3;
  const atol = options.atol ?? 1e-4;
  const values = inputs.map((input, i) => inputValues(input, 1000 + i));
  const arrays = (): NDArray[] =>
    inputs.map((input, i) => ({ shape: [...input.shape], data: values[i].slice() }));

  const outShape = reference(...arrays()).shape;
  const random = new Random(options.seed ?? 7);
  const weights = Float64Array.from(
    { length: outShape.reduce((n, d) => n * d, 1) },
    () => random.normal(),
  );

  // Autograd side, in float32 on the device.
  const leaves = inputs.map((input, i) =>
    tensor(Float32Array.from(values[i]), input.shape, {
      requiresGrad: input.requiresGrad ?? true,
    }),
  );
  const loss = tidy(() => {
    const out = device(...leaves);
    const w = tensor(Float32Array.from(weights), out.shape);
    return sum(mul(out, w));
  });
  backward(loss);
  loss.dispose();
  const analytic: (Float32Array | null)[] = [];
  for (const leaf of leaves) {
    analytic.push(leaf.grad ? await leaf.grad.toArray() : null);
    leaf.dispose();
  }

  // Finite differences on the float64 reference.
  const maxAbsError: number[] = [];
  const tolerance: number[] = [];
  const lines: string[] = [];
  inputs.forEach((input, k) => {
    if (input.requiresGrad === false) {
      maxAbsError.push(0);
      tolerance.push(0);
      return;
    }
    const numeric = new Float64Array(values[k].length);
    for (let i = 0; i < numeric.length; i++) {
      const plus = arrays();
      plus[k].data[i] += eps;
      const minus = arrays();
      minus[k].data[i] -= eps;
      numeric[i] =
        (weightedSum(reference(...plus), weights) - weightedSum(reference(...minus), weights)) /
        (2 * eps);
    }
    const got = analytic[k] ?? new Float32Array(numeric.length);
    let worst = 0;
    let worstAt = 0;
    let scale = 0;
    for (let i = 0; i < numeric.length; i++) {
      scale = Math.max(scale, Math.abs(numeric[i]));
      const error = Math.abs(got[i] - numeric[i]);
      if (error > worst || Number.isNaN(error)) {
        worst = Number.isNaN(error) ? Infinity : error;
        worstAt = i;
      }
    }
    const tol = rtol * scale + atol;
    maxAbsError.push(worst);
    tolerance.push(tol);
    lines.push(
      `input ${k} [${input.shape.join(',')}]: max error ${worst.toExponential(3)} ` +
        `at ${worstAt} (autograd ${got[worstAt]}, finite difference ${numeric[worstAt]}), ` +
        `tolerance ${tol.toExponential(3)}${analytic[k] ? '' : ', no gradient reached it'}`,
    );
  });
  const ok = maxAbsError.every((e, i) => e <= tolerance[i]);
  return { maxAbsError, tolerance, ok, report: lines.join('\n') };
}
