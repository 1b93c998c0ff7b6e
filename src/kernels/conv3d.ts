// Launchers of the 3D convolution kernels: weight packing, the transposed
// (gather) convolution and the weight gradient, and the geometry uniforms
// they share with the direct convolution (conv3d_rows.ts).

import { empty, type Tensor } from '../tensor.js';
import {
  kernelOptions,
  launch,
  workgroupsFor,
  type KernelSpec,
  type UniformType,
} from './launch.js';
import { isCpuAdapter } from './runs.js';

export type Triple = [number, number, number];

/** Sizes of one convolution, seen from the kernel that runs it. */
export interface ConvGeometry {
  batch: number;
  inChannels: number;
  inSize: Triple;
  outChannels: number;
  outSize: Triple;
  kernelSize: Triple;
  stride: Triple;
  padding: Triple;
  dilation: Triple;
}

/** Output columns per invocation of the transposed kernel. */
export const CONV_BLOCK = 4;

export const GEOMETRY_UNIFORMS: readonly (readonly [string, UniformType])[] = [
  ['spatial', 'u32'],
  ['groups_per_plane', 'u32'],
  ['batch', 'u32'],
  ['in_channels', 'u32'],
  ['in_depth', 'u32'],
  ['in_height', 'u32'],
  ['in_width', 'u32'],
  ['out_channels', 'u32'],
  ['out_depth', 'u32'],
  ['out_height', 'u32'],
  ['out_width', 'u32'],
  ['out_quads', 'u32'],
  ['out_blocks_w', 'u32'],
  ['kernel_d', 'u32'],
  ['kernel_h', 'u32'],
  ['kernel_w', 'u32'],
  ['stride_d', 'u32'],
  ['stride_h', 'u32'],
  ['stride_w', 'u32'],
  ['pad_d', 'u32'],
  ['pad_h', 'u32'],
  ['pad_w', 'u32'],
  ['dilation_d', 'u32'],
  ['dilation_h', 'u32'],
  ['dilation_w', 'u32'],
  ['has_bias', 'u32'],
];

const CONV_BINDINGS = [
  { name: 'x', access: 'read' },
  { name: 'weight', access: 'read', type: 'vec4<f32>' },
  { name: 'bias', access: 'read' },
  { name: 'out', access: 'read_write' },
] as const;

/** Channel quads per invocation of the transposed kernel. */
export const TRANSPOSED_QUADS = 2;

const TRANSPOSED_SPEC: KernelSpec = {
  name: 'conv3d_transpose',
  uniforms: GEOMETRY_UNIFORMS,
  bindings: CONV_BINDINGS,
  constants: (() => {
    const quads = [...Array(TRANSPOSED_QUADS).keys()];
    const columns = [...Array(CONV_BLOCK).keys()];
    const pairs = quads.flatMap((q) => columns.map((j) => [q, j] as const));
    return {
      BLOCK: String(CONV_BLOCK),
      QUADS: String(TRANSPOSED_QUADS),
      ACC_DECL: pairs.map(([q, j]) => `var acc${q}_${j} = vec4<f32>(0.0);`).join('\n  '),
      ACC_UPDATE: [
        ...quads.map((q) => `let wv${q} = weight[weight_index + ${q}u];`),
        ...columns.map((j) => `let xv${j} = vec4<f32>(load_x(row, iw + ${j}));`),
        ...pairs.map(([q, j]) => `acc${q}_${j} = fma(wv${q}, xv${j}, acc${q}_${j});`),
      ].join('\n          '),
      ACC_STORE: pairs
        .map(
          ([q, j]) =>
            `store(first, ow0 + ${j}u * params.stride_w, plane_size, (quad0 + ${q}u) * 4u, acc${q}_${j});`,
        )
        .join('\n  '),
    };
  })(),
};

const PACK_SPEC: KernelSpec = {
  name: 'conv3d_pack',
  uniforms: [
    ['total', 'u32'],
    ['count_a', 'u32'],
    ['count_b', 'u32'],
    ['taps', 'u32'],
    ['quads', 'u32'],
    ['stride_a', 'u32'],
    ['stride_b', 'u32'],
    ['flip', 'u32'],
    ['first_b', 'u32'],
  ],
  bindings: [
    { name: 'weight', access: 'read' },
    { name: 'packed', access: 'read_write', type: 'vec4<f32>' },
  ],
};

const WEIGHT_GRAD_SPEC: KernelSpec = {
  name: 'conv3d_weight_grad',
  uniforms: [
    ['total', 'u32'],
    ['rows_per_chunk', 'u32'],
    ['batch', 'u32'],
    ['x_channels', 'u32'],
    ['x_depth', 'u32'],
    ['x_height', 'u32'],
    ['x_width', 'u32'],
    ['g_channels', 'u32'],
    ['g_depth', 'u32'],
    ['g_height', 'u32'],
    ['g_width', 'u32'],
    ['kernel_d', 'u32'],
    ['kernel_h', 'u32'],
    ['kernel_w', 'u32'],
    ['stride_d', 'u32'],
    ['stride_h', 'u32'],
    ['stride_w', 'u32'],
    ['pad_d', 'u32'],
    ['pad_h', 'u32'],
    ['pad_w', 'u32'],
    ['dilation_d', 'u32'],
    ['dilation_h', 'u32'],
    ['dilation_w', 'u32'],
  ],
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'g', access: 'read' },
    { name: 'partial', access: 'read_write' },
  ],
};

/** Output channel quads, rounded up to a multiple of `quadsPerInvocation`. */
export function roundedQuads(channels: number, quadsPerInvocation: number): number {
  return Math.ceil(Math.ceil(channels / 4) / quadsPerInvocation) * quadsPerInvocation;
}

/**
 * Packs `weight` for the direct or transposed kernel, with the kernel
 * reversed along all three axes when `flip` is set. `read` is the
 * channel count and element stride of the axis the kernel reads (input
 * side), `write` those of the axis it writes, with `write.first`
 * the first written channel to pack (default 0).
 */
export function packWeight(
  op: string,
  weight: Tensor,
  taps: number,
  read: { count: number; stride: number },
  write: { count: number; stride: number; first?: number },
  quadsPerInvocation = 1,
  flip = false,
): Tensor {
  const quads = roundedQuads(write.count, quadsPerInvocation);
  const total = read.count * taps * quads;
  const packed = empty([total * 4], op);
  launch(PACK_SPEC, {
    label: `${op} pack weight`,
    uniforms: {
      total,
      count_a: read.count,
      count_b: write.count,
      taps,
      quads,
      stride_a: read.stride,
      stride_b: write.stride,
      flip: flip ? 1 : 0,
      first_b: write.first ?? 0,
    },
    buffers: [
      { buffer: weight.buffer(op), bytes: weight.bytes },
      { buffer: packed.buffer(op), bytes: packed.bytes },
    ],
    workgroups: workgroupsFor(PACK_SPEC, total),
  });
  return packed;
}

export function geometryUniforms(
  geometry: ConvGeometry,
  blocksW: number,
  hasBias: boolean,
  workgroupSize: number,
  quadsPerInvocation: number,
): Record<string, number> {
  const { inSize, outSize, kernelSize, stride, padding, dilation } = geometry;
  // Rounded up so that quad groups tile it; packWeight pads with zeros.
  const quads = roundedQuads(geometry.outChannels, quadsPerInvocation);
  const spatial = outSize[0] * outSize[1] * blocksW;
  return {
    spatial,
    groups_per_plane: Math.ceil(spatial / workgroupSize),
    batch: geometry.batch,
    in_channels: geometry.inChannels,
    in_depth: inSize[0],
    in_height: inSize[1],
    in_width: inSize[2],
    out_channels: geometry.outChannels,
    out_depth: outSize[0],
    out_height: outSize[1],
    out_width: outSize[2],
    out_quads: quads,
    out_blocks_w: blocksW,
    kernel_d: kernelSize[0],
    kernel_h: kernelSize[1],
    kernel_w: kernelSize[2],
    stride_d: stride[0],
    stride_h: stride[1],
    stride_w: stride[2],
    pad_d: padding[0],
    pad_h: padding[1],
    pad_w: padding[2],
    dilation_d: dilation[0],
    dilation_h: dilation[1],
    dilation_w: dilation[2],
    has_bias: hasBias ? 1 : 0,
  };
}

function runConv(
  spec: KernelSpec,
  op: string,
  geometry: ConvGeometry,
  blocksW: number,
  x: Tensor,
  packed: Tensor,
  bias: Tensor | null,
  quadsPerInvocation = 1,
  extraUniforms: Record<string, number> = {},
): Tensor {
  const [od, oh, ow] = geometry.outSize;
  const out = empty([geometry.batch, geometry.outChannels, od, oh, ow], op);
  const workgroupSize = spec.workgroupSize ?? kernelOptions.workgroupSize;
  const uniforms = {
    ...geometryUniforms(geometry, blocksW, bias !== null, workgroupSize, quadsPerInvocation),
    ...extraUniforms,
  };
  const quadGroups = uniforms.out_quads / quadsPerInvocation;
  // A binding may not be empty, so without a bias the packed weight is bound
  // in its place (the kernel does not read it).
  const biasBuffer = bias ?? packed;
  launch(spec, {
    label: op,
    uniforms,
    buffers: [
      { buffer: x.buffer(op), bytes: x.bytes },
      { buffer: packed.buffer(op), bytes: packed.bytes },
      { buffer: biasBuffer.buffer(op), bytes: biasBuffer.bytes },
      { buffer: out.buffer(op), bytes: out.bytes },
    ],
    workgroups: geometry.batch * quadGroups * uniforms.groups_per_plane,
  });
  return out;
}

/**
 * Transposed convolution (gather form) of `x`; `geometry.inSize` is the
 * size of x and `geometry.outSize` that of the result.
 */
export function convTransposed(
  op: string,
  geometry: ConvGeometry,
  x: Tensor,
  packed: Tensor,
  bias: Tensor | null,
): Tensor {
  const strideW = geometry.stride[2];
  const perPhase = Math.ceil(Math.ceil(geometry.outSize[2] / strideW) / CONV_BLOCK);
  return runConv(TRANSPOSED_SPEC, op, geometry, perPhase * strideW, x, packed, bias, TRANSPOSED_QUADS);
}

export const weightGradPartialsOptions = {
  /**
   * Invocations the pass aims for on CPU adapters, whose two threads need
   * far fewer than a GPU: fewer chunks leave fewer partial sums to reduce.
   */
  cpuInvocations: 4096,
  /**
   * Invocations on other adapters: enough to fill a GPU, few enough that
   * each keeps a long loop over positions.
   */
  gpuInvocations: 1 << 16,
};

/**
 * Partial weight-gradient sums [chunks, Cg, Cx, kD, kH, kW] of a convolution
 * that maps x (sizes `xSize`, `xChannels`) to g (sizes `gSize`).
 */
export function convWeightGradPartials(
  op: string,
  x: Tensor,
  g: Tensor,
  geometry: ConvGeometry,
): Tensor {
  const [, xChannels, xd, xh, xw] = x.shape;
  const [batch, gChannels, gd, gh, gw] = g.shape;
  const [kd, kh, kw] = geometry.kernelSize;
  const taps = kd * kh * kw;
  const blocks = taps * Math.ceil(gChannels / 4) * Math.ceil(xChannels / 4);
  const rows = batch * gd * gh;
  const target = isCpuAdapter()
    ? weightGradPartialsOptions.cpuInvocations
    : weightGradPartialsOptions.gpuInvocations;
  const chunks = Math.max(1, Math.min(rows, Math.floor(target / blocks)));
  const rowsPerChunk = Math.ceil(rows / chunks);
  const chunkCount = Math.ceil(rows / rowsPerChunk);
  const partial = empty([chunkCount, gChannels, xChannels, kd, kh, kw], op);
  const total = chunkCount * blocks;
  launch(WEIGHT_GRAD_SPEC, {
    label: `${op} weight gradient`,
    uniforms: {
      total,
      rows_per_chunk: rowsPerChunk,
      batch,
      x_channels: xChannels,
      x_depth: xd,
      x_height: xh,
      x_width: xw,
      g_channels: gChannels,
      g_depth: gd,
      g_height: gh,
      g_width: gw,
      kernel_d: kd,
      kernel_h: kh,
      kernel_w: kw,
      stride_d: geometry.stride[0],
      stride_h: geometry.stride[1],
      stride_w: geometry.stride[2],
      pad_d: geometry.padding[0],
      pad_h: geometry.padding[1],
      pad_w: geometry.padding[2],
      dilation_d: geometry.dilation[0],
      dilation_h: geometry.dilation[1],
      dilation_w: geometry.dilation[2],
    },
    buffers: [
      { buffer: x.buffer(op), bytes: x.bytes },
      { buffer: g.buffer(op), bytes: g.bytes },
      { buffer: partial.buffer(op), bytes: partial.bytes },
    ],
    workgroups: workgroupsFor(WEIGHT_GRAD_SPEC, total),
  });
  return partial;
}
