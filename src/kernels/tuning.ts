// Per-adapter choice of the matmul kernel variant.
//
// The fastest variant differs between adapters: on llvmpipe, register
// blocking that reads storage directly beats shared-memory tiling, and
// sharing A's loads through subgroups beats both, while on a desktop GPU
// the tiled form wins. So the first large product of each
// shape class starts a small autotune in the background. Every candidate is
// timed a few times, each run waiting for queue.onSubmittedWorkDone. The
// fastest is kept in memory for the adapter and shape class and logged at
// debug level. Until then, and whenever tuning is off, products use a fixed
// fallback per adapter kind. All variants add the products of an output in
// the same order, so the choice changes speed, not results.

import { deviceInfo, flush, gpuDevice, type DeviceInfo } from '../device.js';
import { log } from '../log.js';
import { full } from '../ops/creation.js';
import { keep, type Tensor } from '../tensor.js';
import {
  matmulKernel,
  storedShapes,
  tileShape,
  variantName,
  vec4Allowed,
  variantUnsupported,
  type MatmulProblem,
  type MatmulVariant,
} from './matmul.js';

function initialAutotune(): boolean {
  const env =
    typeof process !== 'undefined' ? process.env?.RRL_MEDSAM_AUTOTUNE : undefined;
  return env !== '0';
}

export const matmulOptions = {
  /**
   * Time the candidate variants on the first product of each shape class
   * and use the fastest from then on. Off: always the fallback variant.
   * The RRL_MEDSAM_AUTOTUNE=0 environment variable turns it off at start.
   */
  autotune: initialAutotune(),
  /** Products of fewer FLOPs (2 * M * N * K * batch) use the fallback untuned. */
  minTuneFlops: 2 ** 26,
  /** Timed runs per candidate, after one untimed run that compiles it. */
  tuneRuns: 3,
  /**
   * Name of a variant (see variantName) used for every product instead of
   * the tuned or fallback choice, or null. A vec4 variant runs in its
   * scalar form where the operands are not aligned for vec4 reads.
   */
  variant: null as string | null,
};

function blocked(
  rowBlocks: number,
  colBlocks: number,
  workgroupSize: number,
  vec4: boolean,
): MatmulVariant {
  return { form: 'blocked', vec4, rowBlocks, colBlocks, workgroupSize };
}

function subgroup(
  rowBlocks: number,
  colBlocks: number,
  workgroupSize: number,
  vec4: boolean,
): MatmulVariant {
  return { form: 'subgroup', vec4, rowBlocks, colBlocks, workgroupSize };
}

function tiled(
  tileCols: number,
  tileRows: number,
  rowBlocks: number,
  colBlocks: number,
  vec4: boolean,
): MatmulVariant {
  return { form: 'tiled', vec4, rowBlocks, colBlocks, tileCols, tileRows };
}

/**
 * Variants the autotune may time, in vec4 or scalar form, including those
 * this device cannot run (see variantUnsupported).
 */
function candidateShapes(vec4: boolean): MatmulVariant[] {
  return [
    blocked(2, 2, 64, vec4),
    blocked(2, 4, 64, vec4),
    blocked(2, 4, 128, vec4),
    subgroup(8, 1, 64, vec4),
    tiled(16, 16, 1, 1, vec4),
    tiled(8, 8, 2, 2, vec4),
  ];
}

/**
 * Returns every variant the autotune may pick, in both vector widths,
 * whether or not this device can run it.
 */
export function allVariants(): MatmulVariant[] {
  return [...candidateShapes(true), ...candidateShapes(false)];
}

/** Returns the variants of allVariants() that this device can run. */
export function supportedVariants(): MatmulVariant[] {
  return allVariants().filter((variant) => variantUnsupported(variant) === null);
}

/** True for adapters that run shaders on the CPU (llvmpipe, SwiftShader, WARP). */
export function isCpuAdapter(info: DeviceInfo): boolean {
  return (
    info.isFallbackAdapter ||
    /llvmpipe|lavapipe|swiftshader|warp|\bcpu\b/i.test(info.adapter)
  );
}

/**
 * Returns the vec4 variant the fallback picks on CPU adapters for
 * `problem`: A shared through subgroups (32 x 4 per invocation) where the
 * device allows it and the product keeps at least half of each
 * workgroup's lanes and of each block's rows busy, else register blocking
 * (8 x 16). A workgroup of the subgroup form stays on one row of blocks,
 * so a narrow or short product would leave most of its lanes idle: a
 * batch of 4 x 4 products ran 36 times slower than with blocking.
 */
export function cpuFallbackVariant(problem: MatmulProblem): MatmulVariant {
  const workgroupSize = 64;
  const shared = subgroup(8, 1, workgroupSize, true);
  const [rows, cols] = tileShape(shared);
  const colTiles = Math.ceil(problem.n / cols);
  const lanesBusy = colTiles / (Math.ceil(colTiles / workgroupSize) * workgroupSize);
  const rowsBusy = problem.m / (Math.ceil(problem.m / rows) * rows);
  const fills = lanesBusy >= 0.5 && rowsBusy >= 0.5;
  return fills && variantUnsupported(shared) === null ? shared : blocked(2, 4, 64, true);
}

/** Returns the vec4 variant the fallback picks on GPUs. */
export function gpuFallbackVariant(): MatmulVariant {
  return tiled(16, 16, 1, 1, true);
}

/**
 * Returns the variant used without tuning: cpuFallbackVariant() on CPU
 * adapters, 64 x 64 shared-memory tiles elsewhere, reading vec4s when the
 * operands allow it.
 */
export function fallbackVariant(problem: MatmulProblem): MatmulVariant {
  const variant = isCpuAdapter(deviceInfo()) ? cpuFallbackVariant(problem) : gpuFallbackVariant();
  return { ...variant, vec4: vec4Allowed(problem) };
}

function sizeBucket(size: number): number {
  return size <= 1 ? 0 : Math.ceil(Math.log2(size) / 2);
}

/**
 * Shape class of a product: transposes, vec4 alignment and the sizes of
 * M, N, K and the batch in powers of 4. Products of one class share a
 * tuned variant.
 */
export function shapeClass(problem: MatmulProblem): string {
  const batch = problem.batchShape.reduce((p, d) => p * d, 1);
  const flags = `${problem.transposeA ? 'T' : 'N'}${problem.transposeB ? 'T' : 'N'}`;
  const width = vec4Allowed(problem) ? 'vec4' : 'scalar';
  const sizes = [problem.m, problem.n, problem.k, batch].map(sizeBucket);
  return `${flags}|${width}|${sizes.join('x')}`;
}

const tuned = new Map<string, MatmulVariant>();
const pending = new Map<string, Promise<MatmulVariant>>();

function cacheKey(problem: MatmulProblem): string {
  return `${deviceInfo().adapter}|${shapeClass(problem)}`;
}

function forcedVariant(name: string, problem: MatmulProblem): MatmulVariant {
  const variant = allVariants().find((v) => variantName(v) === name);
  const unsupported = variant ? variantUnsupported(variant) : null;
  if (variant && unsupported !== null) {
    throw new Error(
      `matmul: matmulOptions.variant "${name}" cannot run on this device: ` +
        `${unsupported}; pick another (or null for the tuned choice)`,
    );
  }
  if (!variant) {
    const known = supportedVariants().map(variantName).join(', ');
    throw new Error(
      `matmul: matmulOptions.variant "${name}" is not a known variant ` +
        `(known: ${known})`,
    );
  }
  if (variant.vec4 && !vec4Allowed(problem)) return { ...variant, vec4: false };
  return variant;
}

function problemFlops(problem: MatmulProblem): number {
  const batch = problem.batchShape.reduce((p, d) => p * d, 1);
  return 2 * problem.m * problem.n * problem.k * batch;
}

/**
 * Returns the variant for a product: the forced one, the tuned one of its shape
 * class, or the fallback. Starts the background autotune of the class on
 * its first large product.
 */
export function chooseVariant(problem: MatmulProblem): MatmulVariant {
  if (matmulOptions.variant !== null) {
    return forcedVariant(matmulOptions.variant, problem);
  }
  if (!matmulOptions.autotune) return fallbackVariant(problem);
  const key = cacheKey(problem);
  const known = tuned.get(key);
  if (known) return known;
  if (!pending.has(key) && problemFlops(problem) >= matmulOptions.minTuneFlops) {
    void tuneMatmul(problem).catch((err: unknown) => {
      log.warn(`matmul: autotune of ${key} failed: ${(err as Error).message}`);
    });
  }
  return fallbackVariant(problem);
}

/** Resolves once every autotune started so far has finished. */
export async function matmulTuningSettled(): Promise<void> {
  while (pending.size > 0) {
    await Promise.allSettled([...pending.values()]);
  }
}

/** Returns the tuned variant names, keyed by adapter and shape class. */
export function tunedVariants(): ReadonlyMap<string, string> {
  return new Map([...tuned].map(([key, variant]) => [key, variantName(variant)]));
}

/** Forgets the tuned choices, so the next products tune again. */
export function resetMatmulTuning(): void {
  tuned.clear();
}

/**
 * Times the candidates for the shape class of `problem` and caches the
 * fastest. Runs at most once per class at a time; later calls for a tuned
 * class resolve to the cached choice.
 */
export function tuneMatmul(problem: MatmulProblem): Promise<MatmulVariant> {
  const key = cacheKey(problem);
  const known = tuned.get(key);
  if (known) return Promise.resolve(known);
  let running = pending.get(key);
  if (!running) {
    running = runTuning(problem, key).finally(() => pending.delete(key));
    pending.set(key, running);
  }
  return running;
}

/**
 * Builds a problem of the same shape class for scratch operands. Its batch
 * is one flat, unbroadcast axis, cut so that one run stays near 2^30 FLOPs.
 */
function scratchProblem(problem: MatmulProblem): MatmulProblem {
  const batch = problem.batchShape.reduce((p, d) => p * d, 1);
  const perMatrix = 2 * problem.m * problem.n * problem.k;
  const scratchBatch = Math.max(1, Math.min(batch, Math.floor(2 ** 30 / perMatrix)));
  const { aRows, aCols, bRows, bCols } = storedShapes(problem);
  return {
    ...problem,
    batchShape: scratchBatch > 1 ? [scratchBatch] : [],
    aBatchStrides: scratchBatch > 1 ? [aRows * aCols] : [],
    bBatchStrides: scratchBatch > 1 ? [bRows * bCols] : [],
  };
}

async function runTuning(problem: MatmulProblem, key: string): Promise<MatmulVariant> {
  const scratch = scratchProblem(problem);
  const batch = scratch.batchShape.length > 0 ? scratch.batchShape[0] : 1;
  const { aRows, aCols, bRows, bCols } = storedShapes(scratch);
  // Kept, because the tuning starts inside the caller's tidy() (the first
  // large product) and runs on after that scope ends.
  const a = keep(full([batch, aRows, aCols], 0.5));
  const b = keep(full([batch, bRows, bCols], 0.25));
  const vec4 = vec4Allowed(scratch);
  const times: string[] = [];
  let best: MatmulVariant | null = null;
  let bestMs = Infinity;
  try {
    for (const candidate of candidateShapes(vec4)) {
      if (variantUnsupported(candidate) !== null) continue;
      const ms = await timeCandidate(candidate, scratch, a, b, bestMs);
      times.push(`${variantName(candidate)} ${ms.toFixed(2)} ms`);
      if (ms < bestMs) {
        bestMs = ms;
        best = candidate;
      }
    }
  } finally {
    a.dispose();
    b.dispose();
  }
  const choice = best ?? fallbackVariant(problem);
  tuned.set(key, choice);
  log.debug(`matmul: autotune ${key} chose ${variantName(choice)} (${times.join(', ')})`);
  return choice;
}

/**
 * Best wall time of `matmulOptions.tuneRuns` runs of one candidate, each
 * submitted alone and awaited with queue.onSubmittedWorkDone. A candidate
 * over 4x slower than the best so far stops after its first timed run.
 * GPU errors are not caught here: they surface at the caller's next sync,
 * named after the kernel, like those of any other kernel.
 */
async function timeCandidate(
  variant: MatmulVariant,
  problem: MatmulProblem,
  a: Tensor,
  b: Tensor,
  bestMs: number,
): Promise<number> {
  const queue = gpuDevice().queue;
  const run = async (): Promise<number> => {
    // Wait for earlier work, so that it does not count against this run.
    flush();
    await queue.onSubmittedWorkDone();
    const started = performance.now();
    const out = matmulKernel('matmul autotune', variant, problem, a, b);
    flush();
    await queue.onSubmittedWorkDone();
    const elapsed = performance.now() - started;
    out.dispose();
    return elapsed;
  };
  // The first run compiles the pipeline and warms the caches.
  await run();
  let fastest = Infinity;
  for (let i = 0; i < matmulOptions.tuneRuns; i++) {
    fastest = Math.min(fastest, await run());
    if (fastest > 4 * bestMs) break;
  }
  return fastest;
}
