// Launchers of the warp kernels: trilinear and nearest forward, and the
// backward pass with its deterministic fixed-point scatter (max |g|, the
// scatter, the conversion back to f32). Shapes are checked by the caller
// (src/ops/warp.ts).

import { commandEncoder, dispatchRecorded } from '../device.js';
import { empty, type Tensor } from '../tensor.js';
import {
  kernelOptions,
  launch,
  workgroupsFor,
  type KernelSpec,
  type UniformType,
} from './launch.js';
import { placeholderBuffer } from './placeholder.js';
import { elementsPerInvocation, runLaunch } from './runs.js';
import { WGSL_SOURCES } from './wgsl.generated.js';

// Uniforms of every kernel that walks runs of voxels (see warp_cell.wgsl).
const RUN_UNIFORMS: readonly (readonly [string, UniformType])[] = [
  ['runs', 'u32'],
  ['runs_per_row', 'u32'],
  ['channels', 'u32'],
  ['depth', 'u32'],
  ['height', 'u32'],
  ['width', 'u32'],
  ['plane', 'u32'],
];

const FORWARD_BINDINGS = [
  { name: 'image', access: 'read' },
  { name: 'flow', access: 'read' },
  { name: 'out', access: 'read_write' },
] as const;

function warpCell(): string {
  const text = WGSL_SOURCES.warp_cell;
  if (text === undefined) {
    throw new Error(
      'warp: no kernel source src/kernels/warp_cell.wgsl was embedded. ' +
        'Run `npm run kernels`.',
    );
  }
  return text;
}

const specs = new Map<string, KernelSpec>();

function cachedSpec(key: string, make: () => KernelSpec): KernelSpec {
  let spec = specs.get(key);
  if (!spec) {
    spec = make();
    specs.set(key, spec);
  }
  return spec;
}

function forwardSpec(mode: 'linear' | 'nearest', run: number): KernelSpec {
  return cachedSpec(`${mode}|${run}`, () => ({
    name: mode === 'linear' ? 'warp_linear' : 'warp_nearest',
    uniforms: RUN_UNIFORMS,
    bindings: FORWARD_BINDINGS,
    constants: { WARP_CELL: warpCell(), RUN: run },
  }));
}

function backwardSpec(
  imageGradient: boolean,
  flowGradient: boolean,
  run: number,
): KernelSpec {
  const key = `backward|${imageGradient}|${flowGradient}|${run}`;
  return cachedSpec(key, () => ({
    name: 'warp_backward',
    uniforms: [...RUN_UNIFORMS, ['elements', 'u32']],
    bindings: [
      { name: 'upstream', access: 'read' },
      { name: 'image', access: 'read' },
      { name: 'flow', access: 'read' },
      { name: 'max_bits', access: 'read', type: 'u32' },
      { name: 'accumulator', access: 'read_write', type: 'atomic<u32>' },
      { name: 'flow_grad', access: 'read_write' },
    ],
    constants: {
      WARP_CELL: warpCell(),
      IMAGE_GRADIENT: String(imageGradient),
      FLOW_GRADIENT: String(flowGradient),
      RUN: run,
    },
  }));
}

const SCATTER_INIT_SPEC: KernelSpec = {
  name: 'warp_scatter_init',
  uniforms: [
    ['size', 'u32'],
    ['stride', 'u32'],
  ],
  bindings: [
    { name: 'values', access: 'read', type: 'u32' },
    { name: 'result', access: 'read_write', type: 'atomic<u32>' },
    { name: 'accumulator', access: 'read_write', type: 'u32' },
  ],
};

const FIXED_TO_FLOAT_SPEC: KernelSpec = {
  name: 'warp_fixed_to_float',
  uniforms: [['size', 'u32']],
  bindings: [
    { name: 'accumulator', access: 'read', type: 'u32' },
    { name: 'max_bits', access: 'read', type: 'u32' },
    { name: 'out', access: 'read_write' },
  ],
};

// Elements each invocation of warp_scatter_init handles at least, so that a
// large tensor needs few workgroups and few global atomics.
const INIT_ELEMENTS_PER_INVOCATION = 64;

interface RunGrid {
  run: number;
  uniforms: Record<string, number>;
}

/**
 * Splits every row of the volume into runs of voxels along W, one run per
 * invocation. CPU adapters get long runs, because each invocation has a
 * fixed cost there. Long runs also let the backward scatter merge the
 * corners that neighbouring voxels share, which sends 4 + 4 / run atomics
 * per voxel and channel for a smooth flow instead of 8. GPUs get single
 * voxels, so that neighbouring invocations touch neighbouring addresses.
 */
function runGrid(image: Tensor): RunGrid {
  const [n, c, d, h, w] = image.shape;
  const run = Math.max(1, Math.min(elementsPerInvocation(), w));
  const runsPerRow = Math.ceil(w / run);
  return {
    run,
    uniforms: {
      runs: n * d * h * runsPerRow,
      runs_per_row: runsPerRow,
      channels: c,
      depth: d,
      height: h,
      width: w,
      plane: d * h * w,
    },
  };
}

/** Warps `image` by `flow` with trilinear or nearest sampling; no autograd. */
export function warpForward(
  op: string,
  mode: 'linear' | 'nearest',
  image: Tensor,
  flow: Tensor,
): Tensor {
  const out = empty(image.shape, op);
  const { run, uniforms } = runGrid(image);
  const spec = forwardSpec(mode, run);
  launch(spec, {
    label: `${op} ${mode}`,
    uniforms,
    buffers: [
      { buffer: image.buffer(op), bytes: image.bytes },
      { buffer: flow.buffer(op), bytes: flow.bytes },
      { buffer: out.buffer(op), bytes: out.bytes },
    ],
    workgroups: workgroupsFor(spec, uniforms.runs),
  });
  return out;
}

function clear(op: string, t: Tensor): void {
  commandEncoder(op).clearBuffer(t.buffer(op), 0, Math.ceil(t.bytes / 4) * 4);
  dispatchRecorded();
}

interface Scatter {
  /** The f32 bits of max |g| (read as u32), one element. */
  maxBits: Tensor;
  /** The u32 low words of the image elements' sums, then the high words. */
  accumulator: Tensor;
}

/** Computes max |g| and allocates the biased fixed-point sums. */
function prepareScatter(op: string, g: Tensor): Scatter {
  const maxBits = empty([1], op);
  clear(op, maxBits);
  // g has the image's shape, so its elements are the image elements.
  const accumulator = empty([2 * g.size], op);
  const size = SCATTER_INIT_SPEC.workgroupSize ?? kernelOptions.workgroupSize;
  const workgroups = Math.max(
    1,
    Math.ceil(g.size / (size * INIT_ELEMENTS_PER_INVOCATION)),
  );
  launch(SCATTER_INIT_SPEC, {
    label: `${op} max |gradient|`,
    uniforms: { size: g.size, stride: workgroups * size },
    buffers: [
      { buffer: g.buffer(op), bytes: g.bytes },
      { buffer: maxBits.buffer(op), bytes: maxBits.bytes },
      { buffer: accumulator.buffer(op), bytes: accumulator.bytes },
    ],
    workgroups,
  });
  return { maxBits, accumulator };
}

export interface WarpGradients {
  image: Tensor | null;
  flow: Tensor | null;
}

/**
 * Computes the gradients of the trilinear warp to the image and to the
 * flow from the upstream gradient `g`, each only when requested.
 */
export function warpBackward(
  op: string,
  g: Tensor,
  image: Tensor,
  flow: Tensor,
  wanted: { image: boolean; flow: boolean },
): WarpGradients {
  if (!wanted.image && !wanted.flow) return { image: null, flow: null };
  const grid = runGrid(image);
  const spec = backwardSpec(wanted.image, wanted.flow, grid.run);
  const uniforms: Record<string, number> = {
    ...grid.uniforms,
    elements: image.size,
  };
  const scatter = wanted.image ? prepareScatter(op, g) : null;
  const flowGrad = wanted.flow ? empty(flow.shape, op) : null;
  // Unused bindings get stand-ins: a read binding may share g's buffer,
  // while at most one read_write binding takes the placeholder.
  const placeholder = placeholderBuffer();
  launch(spec, {
    label: `${op} backward`,
    uniforms,
    buffers: [
      { buffer: g.buffer(op), bytes: g.bytes },
      { buffer: image.buffer(op), bytes: image.bytes },
      { buffer: flow.buffer(op), bytes: flow.bytes },
      scatter
        ? { buffer: scatter.maxBits.buffer(op), bytes: 4 }
        : { buffer: g.buffer(op), bytes: 4 },
      scatter
        ? {
            buffer: scatter.accumulator.buffer(op),
            bytes: scatter.accumulator.bytes,
          }
        : placeholder,
      flowGrad
        ? { buffer: flowGrad.buffer(op), bytes: flowGrad.bytes }
        : placeholder,
    ],
    workgroups: workgroupsFor(spec, uniforms.runs),
  });

  let imageGrad: Tensor | null = null;
  if (scatter) {
    const { accumulator, maxBits } = scatter;
    imageGrad = empty(image.shape, op);
    const convert = runLaunch(FIXED_TO_FLOAT_SPEC, image.size);
    launch(convert.spec, {
      label: `${op} image gradient`,
      uniforms: { size: image.size },
      buffers: [
        { buffer: accumulator.buffer(op), bytes: accumulator.bytes },
        { buffer: maxBits.buffer(op), bytes: maxBits.bytes },
        { buffer: imageGrad.buffer(op), bytes: imageGrad.bytes },
      ],
      workgroups: convert.workgroups,
    });
    accumulator.dispose();
    maxBits.dispose();
  }
  return { image: imageGrad, flow: flowGrad };
}
