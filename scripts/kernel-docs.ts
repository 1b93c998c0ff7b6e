// Generates the kernel tables of docs/kernels.md from the kernel specs and
// the header comments of src/kernels/*.wgsl:
//   npx tsx scripts/kernel-docs.ts          print the generated section
//   npx tsx scripts/kernel-docs.ts --write  replace it in docs/kernels.md
//   npx tsx scripts/kernel-docs.ts --check  exit 1 when the file disagrees
//
// The specs are those that launch() records (launchedKernelVariants), so
// exerciseKernels() first runs every op of the runtime on small inputs,
// forward and backward, with the variant switches that reach every kernel
// form. test/kernel-docs.test.ts runs the same and compares.

import { readFileSync, writeFileSync } from 'node:fs';
import * as rrl from '../src/index.js';
import { setDebugChecks } from '../src/debug.js';
import { copyKernel, peakFmaKernel } from '../src/kernels/ceilings.js';
import {
  launchedKernelVariants,
  uniformFields,
  type KernelSpec,
} from '../src/kernels/launch.js';
import { WGSL_SOURCES } from '../src/kernels/wgsl.generated.js';
import { variantName, variantUnsupported } from '../src/kernels/matmul.js';
import { allVariants, matmulOptions } from '../src/kernels/tuning.js';
import { sharedLanesFor, weightGradLanes } from '../src/kernels/conv3d_weight_grad_rows.js';
import { affineFlow, identityAffine } from '../src/pipeline/affine-flow.js';
import type { Tensor } from '../src/tensor.js';
import { runMain, UsageError } from './run-main.js';

export const DOC_PATH = new URL('../docs/kernels.md', import.meta.url);
export const BEGIN_MARK = '<!-- BEGIN GENERATED KERNEL TABLES: npx tsx scripts/kernel-docs.ts --write -->';
export const END_MARK = '<!-- END GENERATED KERNEL TABLES -->';

const { backward, randn, rand, tensor, sync, noGrad } = rrl;

function withGrad(shape: number[], seed: number): Tensor {
  return randn(shape, seed, { requiresGrad: true });
}

/** Sums `out` with fixed weights and runs the backward pass. */
function backwardOf(out: Tensor, seed: number): void {
  const weights = randn(out.shape, seed);
  backward(rrl.sum(rrl.mul(out, weights)));
}

/**
 * Input channels of the convolution whose weight exceeds 64 KiB, which also
 * takes the shared weight-gradient form.
 */
const WIDE_X_CHANNELS = 40;

function exerciseConvolutions(): void {
  // Widths that are multiples of 4 take the vec4 forms of the row-segment
  // kernels; odd widths the scalar forms and the fallback weight gradient.
  for (const width of [8, 7]) {
    const x = withGrad([1, 3, 5, 4, width], 1);
    const w = withGrad([6, 3, 3, 3, 3], 2);
    const b = withGrad([6], 3);
    backwardOf(rrl.conv3d(x, w, b, { padding: 1 }), 4);
    backwardOf(rrl.conv3d(x, w, b, { padding: 1, stride: 2 }), 5);
  }
  // A weight past 64 KiB is bound from storage instead of a uniform array.
  const wide = withGrad([16, WIDE_X_CHANNELS, 3, 3, 3], 6);
  backwardOf(rrl.conv3d(withGrad([1, WIDE_X_CHANNELS, 3, 2, 4], 7), wide, null, { padding: 1 }), 8);
  // A stride past 4 along W keeps the conv3d_transpose gather kernel.
  const tw = withGrad([2, 3, 2, 2, 3], 9);
  const stride5 = { stride: [1, 2, 5] as const, outputPadding: [0, 1, 2] as const, padding: [0, 1, 1] as const };
  backwardOf(rrl.convTranspose3d(withGrad([1, 2, 2, 3, 3], 10), tw, null, stride5), 11);
}

function exerciseResampling(): void {
  const image = withGrad([1, 2, 5, 4, 6], 12);
  const flow = withGrad([1, 3, 5, 4, 6], 13);
  backwardOf(rrl.warp(image, flow, { mode: 'linear' }), 14);
  noGrad(() => rrl.warp(image, flow, { mode: 'nearest' }));
  backwardOf(rrl.integrateVelocity(flow, 2), 15);
  backwardOf(rrl.composeFlows(flow, flow), 16);
  const x = withGrad([1, 2, 3, 4, 5], 17);
  backwardOf(rrl.upsample3d(x, { scale: 2, mode: 'linear' }), 18);
  backwardOf(rrl.upsample3d(x, { scale: 2, mode: 'nearest' }), 19);
  backwardOf(rrl.maxPool3d(x, { kernelSize: 2 }), 20);
  backwardOf(rrl.avgPool3d(x, { kernelSize: 2 }), 21);
  const matrix = tensor(Array.from(identityAffine()), [3, 4], { requiresGrad: true });
  backwardOf(affineFlow(matrix, [1, 1, 3, 4, 5]), 22);
}

function exerciseLosses(): void {
  const a = withGrad([1, 1, 9, 10, 11], 23);
  const b = withGrad([1, 1, 9, 10, 11], 24);
  backward(rrl.nccLoss(a, b, { window: 3 }));
  backward(rrl.smoothnessLoss(withGrad([1, 3, 4, 5, 6], 25)));
  const labels = tensor([0, 1, 2, 1, 0, 2, 2, 1], [1, 1, 2, 2, 2]);
  const target = rrl.oneHot(labels, 3);
  const logits = withGrad([1, 3, 2, 2, 2], 26);
  backward(rrl.diceLoss(rrl.softmax(logits, 1), target, { excludeBackground: false }));
}

function exerciseNorms(): void {
  const x = withGrad([2, 4, 3, 4, 5], 27);
  const weight = withGrad([4], 28);
  const bias = withGrad([4], 29);
  backwardOf(rrl.instanceNorm(x, { weight, bias }), 30);
  backwardOf(rrl.groupNorm(x, 2, { weight, bias }), 31);
  backwardOf(rrl.layerNorm(x, [3, 4, 5]), 32);
  backwardOf(rrl.layerNormChannels(x, { weight, bias }), 33);
  const runningMean = rrl.zeros([4]);
  const runningVar = rrl.ones([4]);
  backwardOf(rrl.batchNorm(x, runningMean, runningVar, { training: true, weight, bias }), 34);
  rrl.batchNorm(x, runningMean, runningVar, { training: false });
  rrl.batchStats(x);
}

function exerciseElementwiseAndLayout(): void {
  const a = withGrad([3, 4, 5], 35);
  const b = withGrad([3, 4, 5], 36);
  backwardOf(rrl.gelu(rrl.add(rrl.mul(a, b), rrl.exp(a))), 37);
  backwardOf(rrl.where(rrl.gt(a, b), a, b), 38);
  backwardOf(rrl.concat([a, b], 1), 39);
  backwardOf(rrl.pad(a, [[0, 0], [1, 2], [2, 1]]), 40);
  backwardOf(rrl.permute(a, [2, 0, 1]), 41);
  backwardOf(rrl.broadcastTo(rrl.sum(a, [1], { keepDims: true }), [3, 4, 5]), 42);
  backwardOf(rrl.indexSelect(a, 1, tensor([3, 0, 3], [3])), 43);
  backwardOf(rrl.logSoftmax(a, 2), 44);
  rrl.argmax(a, 2);
  rrl.max(a, [0, 2]);
  rrl.mean(a);
  rrl.full([5], 2);
}

const SUBGROUP_MATMUL = 'subgroup-32x4-vec4-wg64';

/**
 * Returns why this device cannot launch every kernel form that the
 * reference documents, or null when it can. The subgroup forms need the
 * subgroups feature with subgroups of at least 8 invocations (llvmpipe on
 * 256-bit vectors has them, on 128-bit vectors not). Without them the
 * generated tables cannot match docs/kernels.md.
 */
export function missingKernelForms(): string | null {
  const matmul = allVariants().find((variant) => variantName(variant) === SUBGROUP_MATMUL);
  const matmulWhy = matmul ? variantUnsupported(matmul) : `no variant ${SUBGROUP_MATMUL}`;
  if (matmulWhy !== null) return `matmul-subgroup cannot run: ${matmulWhy}`;
  // The shared weight gradient of the wide convolution in exerciseConvolutions.
  const lanes = weightGradLanes(WIDE_X_CHANNELS, 3, 3);
  if (sharedLanesFor(lanes) === 0) return 'the shared form of conv3d_weight_grad_rows cannot run';
  return null;
}

function exerciseMatmulAndOptimizers(): void {
  matmulOptions.autotune = false;
  const variants = ['blocked-8x16-vec4-wg128', SUBGROUP_MATMUL, 'tiled-64x64-4x4-vec4'];
  for (const variant of variants) {
    if (variant === SUBGROUP_MATMUL && missingKernelForms() !== null) continue;
    matmulOptions.variant = variant;
    backwardOf(rrl.matmul(withGrad([16, 12], 45), withGrad([12, 8], 46)), 47);
  }
  matmulOptions.variant = null;
  const params = [withGrad([6], 48), withGrad([2, 3], 49)];
  backwardOf(rrl.add(params[0], rrl.reshape(params[1], [6])), 50);
  new rrl.Adam(params, { lr: 1e-3 }).step();
  new rrl.SGD(params, { lr: 1e-2, momentum: 0.9 }).step();
  rrl.emaUpdate([params[0]], [rrl.zeros([6])], 0.9);
  peakFmaKernel(rrl.zeros([256 * 4]), 1);
  copyKernel(rrl.ones([64]), rrl.zeros([64]));
  setDebugChecks({ nonFinite: true });
  rrl.exp(rand([4], 51));
  setDebugChecks({ nonFinite: false });
}

/** Runs every op of the runtime once, so that launch() records every kernel. */
export async function exerciseKernels(): Promise<void> {
  await rrl.ready();
  exerciseConvolutions();
  exerciseResampling();
  exerciseLosses();
  exerciseNorms();
  exerciseElementwiseAndLayout();
  exerciseMatmulAndOptimizers();
  await sync();
}

/** Names of the .wgsl files that are kernels (the others are fragments). */
export function kernelSourceNames(): string[] {
  return Object.keys(WGSL_SOURCES)
    .filter((name) => WGSL_SOURCES[name].includes('@compute'))
    .sort();
}

/** Returns the comment lines that open a kernel's .wgsl file, without the slashes. */
export function headerComment(name: string): string[] {
  const lines: string[] = [];
  for (const line of WGSL_SOURCES[name].split('\n')) {
    if (!line.startsWith('//')) break;
    lines.push(line.replace(/^\/\/ ?/, ''));
  }
  return lines;
}

const SHORT_CONSTANT = /^[\w.+-]{1,12}$/;

function constantsLine(specs: readonly KernelSpec[]): string {
  const names = [...new Set(specs.flatMap((spec) => Object.keys(spec.constants ?? {})))];
  if (names.length === 0) return 'none';
  return names
    .map((name) => {
      const values = [...new Set(specs.map((spec) => String(spec.constants?.[name] ?? '')))];
      return values.every((v) => SHORT_CONSTANT.test(v)) ? `\`${name}\`` : `\`${name}\` (generated code)`;
    })
    .join(', ');
}

function bindingRows(specs: readonly KernelSpec[]): string[] {
  const rows = ['| binding | name | address space, access | element type |', '| --- | --- | --- | --- |'];
  rows.push('| 0 | `params` | uniform | `Params` |');
  const count = Math.max(...specs.map((spec) => spec.bindings.length));
  for (let i = 0; i < count; i++) {
    const forms = specs.map((spec) => spec.bindings[i]).filter((b) => b !== undefined);
    const name = [...new Set(forms.map((b) => b.name))].join(' / ');
    const access = [...new Set(forms.map((b) => (b.access === 'uniform' ? 'uniform' : `storage, ${b.access}`)))];
    const types = [
      ...new Set(
        forms.map((b) =>
          b.access === 'uniform' ? `array<${b.type ?? 'f32'}, ${b.count}>` : `array<${b.type ?? 'f32'}>`,
        ),
      ),
    ];
    rows.push(`| ${i + 1} | \`${name}\` | ${access.join(' or ')} | ${types.map((t) => `\`${t}\``).join(' or ')} |`);
  }
  return rows;
}

function uniformRows(spec: KernelSpec): string[] {
  const fields = uniformFields(spec);
  if (fields.length === 0) return ['`Params` has no fields (a placeholder `unused: u32`).'];
  return [
    '| offset | field | WGSL type |',
    '| --- | --- | --- |',
    ...fields.map((f) => `| ${f.offset} | \`${f.name}\` | \`${f.type}\` |`),
  ];
}

/** Renders the generated section of docs/kernels.md from the launched specs. */
export function renderKernelTables(): string {
  const variants = launchedKernelVariants();
  const parts = [BEGIN_MARK, ''];
  for (const name of kernelSourceNames()) {
    const specs = variants.get(name);
    parts.push(`### ${name}`, '');
    if (!specs) {
      parts.push('Not launched by scripts/kernel-docs.ts.', '');
      continue;
    }
    parts.push('```text', ...headerComment(name), '```', '');
    parts.push(...bindingRows(specs), '');
    const layouts = [...new Set(specs.map((spec) => JSON.stringify(uniformFields(spec))))];
    if (layouts.length > 1) parts.push('The uniform layout differs between forms; the first form:', '');
    parts.push(...uniformRows(specs[0]), '');
    const sizes = [...new Set(specs.map((spec) => spec.workgroupSize))].join(', ');
    parts.push(`Constants: ${constantsLine(specs)}. Workgroup sizes launched: ${sizes}.`, '');
  }
  parts.push(END_MARK);
  return parts.join('\n');
}

/** Returns the generated section of `text`, or null when its marks are missing. */
export function generatedSection(text: string): string | null {
  const begin = text.indexOf(BEGIN_MARK);
  const end = text.indexOf(END_MARK);
  if (begin < 0 || end < begin) return null;
  return text.slice(begin, end + END_MARK.length);
}

async function main(): Promise<void> {
  const mode = process.argv[2] ?? '--print';
  await exerciseKernels();
  const rendered = renderKernelTables();
  if (mode === '--print') {
    console.log(rendered);
    return;
  }
  const missing = missingKernelForms();
  if (missing !== null) {
    throw new Error(
      `kernel-docs: ${missing}, so the tables would lack its kernel. ` +
        'Run --write and --check on a device with subgroups of 8 (llvmpipe on AVX2).',
    );
  }
  const text = readFileSync(DOC_PATH, 'utf8');
  const current = generatedSection(text);
  if (current === null) {
    throw new Error(`kernel-docs: docs/kernels.md lacks the marks ${BEGIN_MARK} ... ${END_MARK}`);
  }
  if (mode === '--write') {
    writeFileSync(DOC_PATH, text.replace(current, rendered));
    console.log('kernel-docs: wrote the kernel tables of docs/kernels.md');
  } else if (mode === '--check') {
    if (current !== rendered) {
      throw new Error('kernel-docs: docs/kernels.md is out of date; run npx tsx scripts/kernel-docs.ts --write');
    }
    console.log('kernel-docs: docs/kernels.md matches the kernel specs');
  } else {
    throw new UsageError(`kernel-docs: unknown argument ${mode} (use --print, --write or --check)`);
  }
}

runMain(import.meta.url, main, 'usage: npx tsx scripts/kernel-docs.ts [--print | --write | --check]');
