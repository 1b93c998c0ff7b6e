// Launcher of conv3d_weight_grad_rows, the weight gradient that loads each
// row segment of the input once for all taps along W (see the .wgsl file).

import { deviceInfo } from '../device.js';
import { empty, formatShape, type Tensor } from '../tensor.js';
import type { ConvGeometry } from './conv3d.js';
import {
  COMPONENTS,
  loadQuadFn,
  tapVector,
  type RowsForm,
} from './conv3d_rows.js';
import { launch, type KernelSpec } from './launch.js';
import { isCpuAdapter } from './runs.js';

const LOAD_G = `fn load_g(row: u32, column: u32) -> vec4<f32> {
  return g[(row + column) / 4u];
}`;

/** True when x and g can be bound as vec4 arrays (W and OW multiples of 4). */
export function weightGradRowsAllowed(x: Tensor, g: Tensor): boolean {
  return x.shape[4] % 4 === 0 && g.shape[4] % 4 === 0;
}

/**
 * Loads of the x segment of channel p as aligned vec4s, with the vec4s one
 * step shares with the next, and the WGSL expression of the value at each
 * offset.
 */
function segmentLoads(
  form: RowsForm,
  offsets: readonly number[],
  p: number,
): { start: string[]; loads: string[]; shift: string[]; value: (offset: number) => string } {
  // As in conv3d_rows: iw_first = segmentOffset mod 4 at every step.
  const segmentOffset = (((-form.padW) % 4) + 4) % 4;
  const count = Math.floor((offsets[offsets.length - 1] + segmentOffset) / 4) + 1;
  // One step moves 4 output columns, 4 * STRIDE_W input columns.
  const advance = form.strideW;
  const shared = Math.max(0, count - advance);
  const name = (m: number) => `q${p}_${m}`;
  const quadAt = (m: number, first: string) => `load_quad(row4_${p}, ${first} + ${m})`;
  const rowFirst = `(-i32(params.pad_w) - ${segmentOffset}) / 4`;
  return {
    start: [
      `let row4_${p} = ((batch_plane + cx${p}) * x_plane + row_offset) / 4u;`,
      ...[...Array(shared).keys()].map((m) => `var ${name(m)} = ${quadAt(m, rowFirst)};`),
    ],
    loads: [...Array(count - shared).keys()].map(
      (i) => `let ${name(shared + i)} = ${quadAt(shared + i, 'quad_first')};`,
    ),
    shift: [...Array(shared).keys()].map((m) => `${name(m)} = ${name(m + advance)};`),
    value: (r) => {
      const at = r + segmentOffset;
      return `${name(Math.floor(at / 4))}.${COMPONENTS[at % 4]}`;
    },
  };
}

function storeCode(form: RowsForm, c: number, p: number): string {
  const acc = (kw: number) => `acc${c}_${p}_${kw}`;
  return [
    `if (gq * 4u + ${c}u < params.g_channels && cx_first + ${p}u < params.x_channels) {`,
    `  let base = first + ((gq * 4u + ${c}u) * params.x_channels + cx_first + ${p}u) * taps;`,
    ...[...Array(form.kernelW).keys()].map(
      (kw) =>
        `  partial[base + ${kw}u] = (${acc(kw)}.x + ${acc(kw)}.y) + ` +
        `(${acc(kw)}.z + ${acc(kw)}.w);`,
    ),
    '}',
  ].join('\n  ');
}

/** Returns the WGSL of the parts that differ between the plain and the shared form. */
function formCode(shared: boolean, update: readonly string[]): Record<string, string> {
  if (!shared) {
    return {
      ENABLE: '',
      SUBGROUP_ID: '',
      INVOCATION: [
        'let index = global_index(wid, nwg, lid);',
        'if (index >= params.total) {',
        '  return;',
        '}',
        'let lane = index % params.lanes;',
        'let gq = (index / params.lanes) % params.g_quads;',
        'let chunk = index / (params.lanes * params.g_quads);',
      ].join('\n  '),
      ROW_SKIP: ['if (!inside) {', '  continue;', '}'].join('\n    '),
      G_LOADS: [0, 1, 2, 3]
        .map((c) => `let gv${c} = load_g(g_row + g_offset${c}, ow0);`)
        .join('\n      '),
      ACC_GUARD: update.join('\n      '),
    };
  }
  return {
    ENABLE: 'enable subgroups;',
    SUBGROUP_ID: ',\n        @builtin(subgroup_invocation_id) sid: u32',
    INVOCATION: [
      '// One workgroup per (chunk, gq): a workgroup returns whole or not at all.',
      'let group = workgroup_linear(wid, nwg);',
      'if (group >= params.total / WORKGROUP_SIZE) {',
      '  return;',
      '}',
      'let lane = lid;',
      'let gq = group % params.g_quads;',
      'let chunk = group / params.g_quads;',
    ].join('\n  '),
    ROW_SKIP: '',
    G_LOADS: [
      'let g_own = load_g(g_row + min(gq * 4u + sid % 4u, last_g) * g_plane, ow0);',
      ...[0, 1, 2, 3].map((c) => `let gv${c} = subgroupBroadcast(g_own, ${c}u);`),
    ].join('\n      '),
    ACC_GUARD: ['if (inside) {', ...update.map((line) => `  ${line}`), '}'].join('\n      '),
  };
}

function weightGradConstants(form: RowsForm, perLane: number, shared: boolean): Record<string, string> {
  const taps = [...Array(form.kernelW).keys()];
  const offsets = [
    ...new Set(taps.flatMap((kw) => [0, 1, 2, 3].map((i) => kw * form.dilationW + i * form.strideW))),
  ].sort((a, b) => a - b);
  const xChannels = [...Array(perLane).keys()];
  const segments = xChannels.map((p) => segmentLoads(form, offsets, p));
  const channels = [0, 1, 2, 3];
  const update = xChannels.flatMap((p) =>
    taps.flatMap((kw) => [
      `let x${p}_${kw} = ${tapVector(form, kw, 0, segments[p].value)};`,
      ...channels.map((c) => `acc${c}_${p}_${kw} = fma(gv${c}, x${p}_${kw}, acc${c}_${p}_${kw});`),
    ]),
  );
  const segmentOffset = (((-form.padW) % 4) + 4) % 4;
  return {
    KERNEL_W: String(form.kernelW),
    STRIDE_W: String(form.strideW),
    X_PER_LANE: String(perLane),
    LOAD_FN: `${loadQuadFn('params.x_width')}\n\n${LOAD_G}`,
    CHANNELS: xChannels
      .map((p) => `let cx${p} = min(cx_first + ${p}u, params.x_channels - 1u);`)
      .join('\n  '),
    ACC_DECL: channels
      .flatMap((c) => xChannels.flatMap((p) => taps.map((kw) => `var acc${c}_${p}_${kw} = vec4<f32>(0.0);`)))
      .join('\n  '),
    ROW_START: segments.flatMap((segment) => segment.start).join('\n    '),
    ROW_LOADS: [
      `let quad_first = (iw_first - ${segmentOffset}) / 4;`,
      ...segments.flatMap((segment) => segment.loads),
    ].join('\n      '),
    ...formCode(shared, update),
    ROW_SHIFT: segments.flatMap((segment) => segment.shift).join('\n      '),
    ACC_STORE: channels.flatMap((c) => xChannels.map((p) => storeCode(form, c, p))).join('\n  '),
  };
}

const UNIFORMS = [
  ['total', 'u32'],
  ['lanes', 'u32'],
  ['g_quads', 'u32'],
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
  ['stride_d', 'u32'],
  ['stride_h', 'u32'],
  ['pad_d', 'u32'],
  ['pad_h', 'u32'],
  ['pad_w', 'u32'],
  ['dilation_d', 'u32'],
  ['dilation_h', 'u32'],
] as const;

const WORKGROUP_SIZE = 64;

const specs = new Map<string, KernelSpec>();

/**
 * Returns the spec of one form. `sharedLanes` is the workgroup size of the
 * shared form (lanes rounded up to a multiple of 4), or 0 for the plain form.
 */
function weightGradSpec(form: RowsForm, perLane: number, sharedLanes: number): KernelSpec {
  const key = JSON.stringify([form, perLane, sharedLanes]);
  let spec = specs.get(key);
  if (!spec) {
    spec = {
      name: 'conv3d_weight_grad_rows',
      uniforms: UNIFORMS,
      bindings: [
        { name: 'x', access: 'read', type: 'vec4<f32>' },
        { name: 'g', access: 'read', type: 'vec4<f32>' },
        { name: 'partial', access: 'read_write' },
      ],
      constants: weightGradConstants(form, perLane, sharedLanes > 0),
      workgroupSize: sharedLanes > 0 ? sharedLanes : WORKGROUP_SIZE,
    };
    specs.set(key, spec);
  }
  return spec;
}

export const weightGradOptions = {
  /**
   * Invocations the pass aims for on CPU adapters: 64 workgroups of 64 for
   * the two threads to share, and few chunks to reduce afterwards.
   */
  cpuInvocations: 4096,
  /** Invocations the pass aims for on other adapters, enough to fill a GPU. */
  gpuInvocations: 1 << 16,
  /**
   * Minimum lanes (x channel groups times kD times kH) for the shared form,
   * used where the device allows it. False turns the form off.
   */
  sharedFromLanes: 32 as number | false,
};

/**
 * Returns the x channels each invocation takes. Two share each g load:
 * measured faster than one, three or four on llvmpipe (bench/conv3d-shapes.ts shapes).
 */
function xChannelsPerLane(xChannels: number): number {
  return Math.min(2, xChannels);
}

/**
 * Returns the lanes of the pass (x channel groups times kD times kH), the
 * count that sharedLanesFor takes.
 */
export function weightGradLanes(xChannels: number, kernelD: number, kernelH: number): number {
  return Math.ceil(xChannels / xChannelsPerLane(xChannels)) * kernelD * kernelH;
}

/**
 * Largest workgroup of the shared form: WebGPU's default limit. NOTE: a
 * guard, not a measured need. A GPU driver may reject a pipeline that
 * needs many registers per invocation at larger workgroups, although its
 * limits allow them. No such GPU was at hand to check.
 */
const MAX_SHARED_LANES = 256;

/**
 * Returns the workgroup size of the shared form for `lanes` lanes, or 0
 * when the plain form runs: the device needs subgroups of at least 4
 * invocations, and the padded lanes must fit in one workgroup.
 */
export function sharedLanesFor(lanes: number): number {
  const from = weightGradOptions.sharedFromLanes;
  if (from === false || lanes < from) return 0;
  const info = deviceInfo();
  const padded = Math.ceil(lanes / 4) * 4;
  const { maxComputeInvocationsPerWorkgroup, maxComputeWorkgroupSizeX } = info.limits;
  const largest = Math.min(MAX_SHARED_LANES, maxComputeInvocationsPerWorkgroup, maxComputeWorkgroupSizeX);
  const fits = padded <= largest;
  return info.features.has('subgroups') && info.subgroupMinSize >= 4 && fits ? padded : 0;
}

/**
 * Splits `rows` into chunks so that the pass runs about the invocations
 * that weightGradOptions aims for on this adapter.
 */
function planChunks(rows: number, invocationsPerChunk: number): { rowsPerChunk: number; chunkCount: number } {
  const target = isCpuAdapter() ? weightGradOptions.cpuInvocations : weightGradOptions.gpuInvocations;
  const chunks = Math.max(1, Math.min(rows, Math.ceil(target / invocationsPerChunk)));
  const rowsPerChunk = Math.ceil(rows / chunks);
  return { rowsPerChunk, chunkCount: Math.ceil(rows / rowsPerChunk) };
}

/**
 * Partial weight-gradient sums [chunks, Cg, Cx, kD, kH, kW] of the
 * convolution `geometry`, which maps x to g; needs weightGradRowsAllowed.
 */
export function convWeightGradRows(
  op: string,
  x: Tensor,
  g: Tensor,
  geometry: ConvGeometry,
): Tensor {
  if (!weightGradRowsAllowed(x, g)) {
    throw new RangeError(
      `${op}: the weight gradient by rows needs widths that are multiples ` +
        `of 4, got x ${formatShape(x.shape)} and g ${formatShape(g.shape)}`,
    );
  }
  const [, xChannels, xd, xh, xw] = x.shape;
  const [batch, gChannels, gd, gh, gw] = g.shape;
  const [kd, kh, kw] = geometry.kernelSize;
  const form: RowsForm = {
    vec4: true,
    kernelW: kw,
    strideW: geometry.stride[2],
    dilationW: geometry.dilation[2],
    padW: geometry.padding[2],
  };
  const perLane = xChannelsPerLane(xChannels);
  const lanes = weightGradLanes(xChannels, kd, kh);
  const sharedLanes = sharedLanesFor(lanes);
  const spec = weightGradSpec(form, perLane, sharedLanes);
  const paddedLanes = sharedLanes > 0 ? sharedLanes : lanes;
  const gQuads = Math.ceil(gChannels / 4);
  // Chunks from the unpadded lanes, so that both forms split the rows
  // alike and add the same partial sums (the bits must not depend on the form).
  const { rowsPerChunk, chunkCount } = planChunks(batch * gd * gh, lanes * gQuads);
  const partial = empty([chunkCount, gChannels, xChannels, kd, kh, kw], op);
  const total = chunkCount * gQuads * paddedLanes;

  launch(spec, {
    label: `${op} weight gradient`,
    uniforms: {
      total,
      lanes,
      g_quads: gQuads,
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
      stride_d: geometry.stride[0],
      stride_h: geometry.stride[1],
      pad_d: geometry.padding[0],
      pad_h: geometry.padding[1],
      pad_w: geometry.padding[2],
      dilation_d: geometry.dilation[0],
      dilation_h: geometry.dilation[1],
    },
    buffers: [
      { buffer: x.buffer(op), bytes: x.bytes },
      { buffer: g.buffer(op), bytes: g.bytes },
      { buffer: partial.buffer(op), bytes: partial.bytes },
    ],
    workgroups: Math.ceil(total / (spec.workgroupSize ?? WORKGROUP_SIZE)),
  });
  return partial;
}
