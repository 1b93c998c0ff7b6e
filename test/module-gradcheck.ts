// Gradient checks of whole nn modules: autograd gradients of the input and
// of every parameter against central finite differences of a float64
// reference that takes the parameters by name. Both sides reduce the output
// with the same random weights, L = sum(out * w).

import {
  Random,
  backward,
  mul,
  noGrad,
  sum,
  tensor,
  tidy,
  type Tensor,
} from '../src/index.js';
import type { Module } from '../src/nn/module.js';
import type { NDArray } from '../src/reference/ndarray.js';

/** Float64 copies of a module's parameters by name. */
export async function hostParameters(
  module: Module,
): Promise<Map<string, NDArray>> {
  const result = new Map<string, NDArray>();
  for (const [name, t] of module.namedParameters()) {
    const data = Float64Array.from(await t.toArray());
    result.set(name, { shape: [...t.shape], data });
  }
  return result;
}

/**
 * Gives every parameter seeded normal values times `scale`, plus 1 for
 * LayerNorm weights, so that each parameter affects the output.
 */
export function randomizeParameters(
  module: Module,
  seed: number,
  scale = 0.5,
): void {
  const random = new Random(seed);
  const state = new Map<string, Tensor>();
  for (const [name, t] of module.namedParameters()) {
    const isNormWeight = /norm\d?\.weight$|neck\.[13]\.weight$/.test(name);
    const data = Float32Array.from({ length: t.size }, () => {
      const value = scale * random.normal();
      return isNormWeight ? 1 + value : value;
    });
    state.set(name, tensor(data, t.shape));
  }
  module.loadStateDict(state);
  for (const t of state.values()) t.dispose();
}

export interface ModuleCheckOptions {
  eps?: number;
  rtol?: number;
  atol?: number;
  /** Check at most this many seeded elements per tensor (default all). */
  maxElements?: number;
  seed?: number;
}

export interface ModuleCheckResult {
  ok: boolean;
  /** One line per tensor: its worst element and the tolerance. */
  report: string;
  /** Max |device - reference| of the forward output. */
  forwardError: number;
  /** Max |reference| of the forward output. */
  forwardScale: number;
}

function weightedSum(out: NDArray, weights: Float64Array): number {
  let total = 0;
  for (let i = 0; i < out.data.length; i++) total += out.data[i] * weights[i];
  return total;
}

function sampleIndices(size: number, limit: number, random: Random): number[] {
  const all = Array.from({ length: size }, (_, i) => i);
  if (size <= limit) return all;
  // Partial Fisher-Yates shuffle: `limit` distinct indices.
  for (let i = 0; i < limit; i++) {
    const j = i + Math.floor(random.uniform() * (size - i));
    [all[i], all[j]] = [all[j], all[i]];
  }
  return all.slice(0, limit).sort((a, b) => a - b);
}

/**
 * Checks the gradients of `forward(x)` with respect to x and to every
 * parameter of `module` against finite differences of
 * `reference(x, parameters)`.
 */
export async function checkModuleGradients(
  module: Module,
  input: NDArray,
  forward: (x: Tensor) => Tensor,
  reference: (x: NDArray, parameters: Map<string, NDArray>) => NDArray,
  options: ModuleCheckOptions = {},
): Promise<ModuleCheckResult> {
  const eps = options.eps ?? 1e-5;
  const rtol = options.rtol ?? 1e-3;
  const atol = options.atol ?? 1e-4;
  const random = new Random(options.seed ?? 11);
  const parameters = await hostParameters(module);
  const expected = reference(input, parameters);
  const weights = Float64Array.from(expected.data, () => random.normal());

  // Autograd side.
  const x = tensor(Float32Array.from(input.data), input.shape, {
    requiresGrad: true,
  });
  module.zeroGrad();
  const { loss, out } = tidy(() => {
    const y = forward(x);
    const w = tensor(Float32Array.from(weights), y.shape);
    return { loss: sum(mul(y, w)), out: noGrad(() => y.share()) };
  });
  backward(loss);
  loss.dispose();
  const got = await out.toArray();
  out.dispose();
  let forwardError = 0;
  let forwardScale = 0;
  got.forEach((v, i) => {
    forwardError = Math.max(forwardError, Math.abs(v - expected.data[i]));
    forwardScale = Math.max(forwardScale, Math.abs(expected.data[i]));
  });
  const analytic = new Map<string, Float32Array | null>();
  analytic.set('input', x.grad ? await x.grad.toArray() : null);
  x.dispose();
  for (const [name, t] of module.namedParameters()) {
    analytic.set(name, t.grad ? await t.grad.toArray() : null);
  }
  module.zeroGrad();

  // Finite differences of the reference, one tensor at a time.
  const lines: string[] = [];
  let ok = forwardError <= 1e-4 * forwardScale + 1e-5;
  lines.push(`forward: max error ${forwardError.toExponential(3)}`);
  const targets: [string, NDArray][] = [['input', input], ...parameters];
  for (const [name, target] of targets) {
    const indices = sampleIndices(
      target.data.length,
      options.maxElements ?? Infinity,
      random,
    );
    const grad = analytic.get(name) ?? null;
    let worst = 0;
    let worstAt = -1;
    let scale = 0;
    const numeric: number[] = [];
    for (const i of indices) {
      const original = target.data[i];
      target.data[i] = original + eps;
      const plus = weightedSum(reference(input, parameters), weights);
      target.data[i] = original - eps;
      const minus = weightedSum(reference(input, parameters), weights);
      target.data[i] = original;
      numeric.push((plus - minus) / (2 * eps));
    }
    indices.forEach((i, k) => {
      scale = Math.max(scale, Math.abs(numeric[k]));
      const error = Math.abs((grad ? grad[i] : 0) - numeric[k]);
      if (!(error <= worst)) {
        worst = Number.isNaN(error) ? Infinity : error;
        worstAt = i;
      }
    });
    const tolerance = rtol * scale + atol;
    if (!(worst <= tolerance)) ok = false;
    const missing = grad ? '' : ', no gradient reached it';
    lines.push(
      `${name}: max error ${worst.toExponential(3)} at ${worstAt} over ` +
        `${indices.length} elements, tolerance ` +
        `${tolerance.toExponential(3)}${missing}`,
    );
  }
  return { ok, report: lines.join('\n'), forwardError, forwardScale };
}
