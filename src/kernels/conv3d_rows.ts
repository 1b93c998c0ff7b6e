// Launcher of conv3d_rows, the direct convolution that loads each input
// row segment once for all taps along W (see conv3d_rows.wgsl).

import { empty, type Tensor } from '../tensor.js';
import { GEOMETRY_UNIFORMS, geometryUniforms, type ConvGeometry } from './conv3d.js';
import { commandEncoder } from '../device.js';
import { acquireUniform, releaseUniform } from '../pool.js';
import { kernelOptions, launch, type BindingSpec, type KernelSpec } from './launch.js';

/** Register blocking of conv3d_rows. */
export interface RowsVariant {
  /** Output channel quads per invocation. */
  quads: number;
  /** vec4s of columns per invocation: BLOCK = 4 * vectors columns. */
  vectors: number;
  workgroupSize?: number;
}

/** Compile-time geometry of a conv3d_rows pipeline, besides its variant. */
export interface RowsForm {
  /** Bind x and out as vec4 arrays (W and OW multiples of 4). */
  vec4: boolean;
  kernelW: number;
  strideW: number;
  dilationW: number;
  padW: number;
}

export const COMPONENTS = ['x', 'y', 'z', 'w'];

/**
 * Picks the blocking for `geometry`. Columns: 16 per invocation on rows
 * that are a multiple of 16 long, else 8 unless 12 (or 4, on rows of at
 * most 4) waste fewer padded columns. Output channels: four quads when the
 * channels fill them and the packed weight fits the uniform array, else
 * two on the same terms, else one. conv3d splits a convolution whose
 * weight does not fit into groups of output channels that do.
 *
 * Chosen by timing every direct convolution of the cpu preset's training
 * step at 64^3 on llvmpipe (2 cores), the median of 7 runs each. 16
 * columns took 935 ms per step against 1,261 ms for 8 with the same
 * channel quads. Four quads beat two when the weight is uniform (16 to 16
 * channels at 32^3: 12.5 ms against 17.4), but lost when it is read from
 * storage (50 to 16 channels at 32^3: 141 ms against 70 for one quad).
 * The blocking changes which invocation adds which products, not their
 * order, so every variant gives bitwise the same output.
 */
export function rowsVariantFor(geometry: ConvGeometry): RowsVariant {
  const width = geometry.outSize[2];
  const waste = (vectors: number) => Math.ceil(width / (4 * vectors)) * 4 * vectors - width;
  let vectors = 2;
  if (width % 16 === 0) vectors = 4;
  else if (width <= 4) vectors = 1;
  else if (waste(3) < waste(2)) vectors = 3;
  const quads = Math.ceil(geometry.outChannels / 4);
  const [kd, kh, kw] = geometry.kernelSize;
  const packedVec4s = geometry.inChannels * kd * kh * kw * quads;
  if (packedVec4s > UNIFORM_WEIGHT_VEC4S) return { quads: 1, vectors };
  if (quads % 4 === 0) return { quads: 4, vectors };
  return { quads: quads % 2 === 0 ? 2 : 1, vectors };
}

/** True when x and out can be bound as vec4 arrays for this geometry. */
export function rowsVec4Allowed(geometry: ConvGeometry): boolean {
  return geometry.inSize[2] % 4 === 0 && geometry.outSize[2] % 4 === 0;
}

/**
 * vec4s of a weight bound as a uniform array: 64 KiB, the smallest
 * maxUniformBufferBindingSize WebGPU allows, so every device takes it.
 */
export const UNIFORM_WEIGHT_VEC4S = 4096;

export const rowsOptions = {
  /**
   * Bind packed weights of at most UNIFORM_WEIGHT_VEC4S vec4s as a uniform
   * array. On llvmpipe a workgroup-uniform load from a storage buffer costs
   * as much as one per invocation, while a uniform buffer load does not.
   * The 4-to-4-channel convolution at 48^3 took 10 ms of process CPU / 2
   * instead of 15 on one lavapipe thread.
   */
  uniformWeights: true,
};

/** Returns the weight binding for a kernel that reads the packed weight `packed`. */
export function weightBinding(packed: Tensor): BindingSpec {
  return packed.size / 4 <= UNIFORM_WEIGHT_VEC4S && rowsOptions.uniformWeights
    ? { name: 'weight', access: 'uniform', type: 'vec4<f32>', count: UNIFORM_WEIGHT_VEC4S }
    : { name: 'weight', access: 'read', type: 'vec4<f32>' };
}

/**
 * Returns the buffer to bind for `binding`: `packed` itself, or a copy in
 * a pooled uniform buffer, with the function that releases it after the
 * dispatch is recorded.
 */
export function weightBuffer(
  op: string,
  packed: Tensor,
  binding: BindingSpec,
): { buffer: GPUBuffer; bytes: number; release: () => void } {
  if (binding.access !== 'uniform') {
    return { buffer: packed.buffer(op), bytes: packed.bytes, release: () => {} };
  }
  const bytes = UNIFORM_WEIGHT_VEC4S * 16;
  const buffer = acquireUniform(bytes);
  commandEncoder(op).copyBufferToBuffer(packed.buffer(op), 0, buffer, 0, packed.bytes);
  return { buffer, bytes, release: () => releaseUniform(buffer) };
}

/** WGSL of load_column: one column of an f32 row of `width` columns. */
export function loadColumnFn(width: string): string {
  return `fn load_column(row: u32, column: i32) -> f32 {
  let last = i32(${width}) - 1;
  let value = x[row + u32(clamp(column, 0, last))];
  return select(0.0, value, column >= 0 && column <= last);
}`;
}

/** WGSL of load_quad: one aligned vec4 of a vec4 row of `width` columns. */
export function loadQuadFn(width: string): string {
  return `fn load_quad(row4: u32, quad: i32) -> vec4<f32> {
  let last = i32(${width} / 4u) - 1;
  let value = x[row4 + u32(clamp(quad, 0, last))];
  return select(vec4<f32>(0.0), value, quad >= 0 && quad <= last);
}`;
}

/**
 * Code reading the segment of an input row that the taps reach, and the
 * WGSL expression of the value at each offset from iw_first.
 */
export function rowLoads(form: RowsForm, offsets: readonly number[]): { code: string[]; value: (offset: number) => string } {
  if (!form.vec4) {
    return {
      code: offsets.map((r) => `let s${r} = load_column(row, iw_first + ${r});`),
      value: (r) => `s${r}`,
    };
  }
  // ow0 * STRIDE_W is a multiple of 4, so iw_first = segmentOffset mod 4.
  const segmentOffset = (((-form.padW) % 4) + 4) % 4;
  const quads = [...new Set(offsets.map((r) => Math.floor((r + segmentOffset) / 4)))];
  return {
    code: [
      'let row4 = row / 4u;',
      `let quad_first = (iw_first - ${segmentOffset}) / 4;`,
      ...quads.map((m) => `let q${m} = load_quad(row4, quad_first + ${m});`),
    ],
    value: (r) => {
      const at = r + segmentOffset;
      return `q${Math.floor(at / 4)}.${COMPONENTS[at % 4]}`;
    },
  };
}

/** Returns the vec4 of the input values that tap kw meets in vector v. */
export function tapVector(form: RowsForm, kw: number, v: number, value: (offset: number) => string): string {
  const lanes = [0, 1, 2, 3].map((i) => kw * form.dilationW + (4 * v + i) * form.strideW);
  const names = lanes.map(value);
  // Four consecutive components of one loaded vec4 are that vec4.
  const whole = names.every((name, i) => name.endsWith(`.${COMPONENTS[i]}`)) &&
    new Set(names.map((name) => name.split('.')[0])).size === 1;
  return whole ? names[0].split('.')[0] : `vec4<f32>(${names.join(', ')})`;
}

function rowsConstants(variant: RowsVariant, form: RowsForm): Record<string, string> {
  const block = 4 * variant.vectors;
  const channels = [...Array(4 * variant.quads).keys()];
  const vectors = [...Array(variant.vectors).keys()];
  const taps = [...Array(form.kernelW).keys()];
  const offsets = [
    ...new Set(
      taps.flatMap((kw) =>
        [...Array(block).keys()].map((j) => kw * form.dilationW + j * form.strideW),
      ),
    ),
  ].sort((a, b) => a - b);
  const loads = rowLoads(form, offsets);
  const tapCode = taps.map((kw) =>
    [
      '{',
      ...[...Array(variant.quads).keys()].map(
        (q) => `  let w${q} = weight[(tap_row + ${kw}u) * params.out_quads + quad0 + ${q}u];`,
      ),
      ...vectors.map((v) => `  let x${v} = ${tapVector(form, kw, v, loads.value)};`),
      ...channels.flatMap((o) =>
        vectors.map(
          (v) =>
            `  acc${o}_${v} = fma(vec4<f32>(w${Math.floor(o / 4)}.${COMPONENTS[o % 4]}), ` +
            `x${v}, acc${o}_${v});`,
        ),
      ),
      '}',
    ].join('\n        '),
  );
  return {
    QUADS: String(variant.quads),
    BLOCK: String(block),
    KERNEL_W: String(form.kernelW),
    STRIDE_W: String(form.strideW),
    LOAD_FN: form.vec4 ? loadQuadFn('params.in_width') : loadColumnFn('params.in_width'),
    ACC_DECL: channels
      .flatMap((o) => vectors.map((v) => `var acc${o}_${v} = vec4<f32>(0.0);`))
      .join('\n  '),
    ROW_LOADS: loads.code.join('\n        '),
    ROW_TAPS: tapCode.join('\n        '),
    ACC_STORE: channels.map((o) => storeCode(form, o, vectors)).join('\n  '),
  };
}

export function storeCode(form: RowsForm, o: number, vectors: readonly number[]): string {
  const lines = [`if (quad0 * 4u + ${o}u < params.out_channels) {`];
  lines.push(`  let co = quad0 * 4u + ${o}u;`);
  lines.push('  let b = bias_of(co);');
  for (const v of vectors) {
    if (form.vec4) {
      lines.push(
        `  if (ow0 + ${4 * v}u < params.out_width) {`,
        `    out[(first + co * plane_size) / 4u + ${v}u] = acc${o}_${v} + vec4<f32>(b);`,
        '  }',
      );
      continue;
    }
    for (let i = 0; i < 4; i++) {
      const column = 4 * v + i;
      lines.push(
        `  if (ow0 + ${column}u < params.out_width) {`,
        `    out[first + co * plane_size + ${column}u] = acc${o}_${v}.${COMPONENTS[i]} + b;`,
        '  }',
      );
    }
  }
  lines.push('}');
  return lines.join('\n  ');
}

const specs = new Map<string, KernelSpec>();

function rowsSpec(variant: RowsVariant, form: RowsForm, weight: BindingSpec): KernelSpec {
  const key = JSON.stringify([variant, form, weight]);
  let spec = specs.get(key);
  if (!spec) {
    const element = form.vec4 ? 'vec4<f32>' : 'f32';
    spec = {
      name: 'conv3d_rows',
      uniforms: GEOMETRY_UNIFORMS,
      bindings: [
        { name: 'x', access: 'read', type: element },
        weight,
        { name: 'bias', access: 'read' },
        { name: 'out', access: 'read_write', type: element },
      ],
      constants: rowsConstants(variant, form),
      workgroupSize: variant.workgroupSize,
    };
    specs.set(key, spec);
  }
  return spec;
}

/**
 * Direct convolution of `x` with a weight packed by packWeight with
 * `variant.quads` quads per invocation.
 */
export function convRows(
  op: string,
  geometry: ConvGeometry,
  x: Tensor,
  packed: Tensor,
  bias: Tensor | null,
  variant: RowsVariant,
  vec4 = rowsVec4Allowed(geometry),
): Tensor {
  const form: RowsForm = {
    vec4,
    kernelW: geometry.kernelSize[2],
    strideW: geometry.stride[2],
    dilationW: geometry.dilation[2],
    padW: geometry.padding[2],
  };
  const spec = rowsSpec(variant, form, weightBinding(packed));
  const blocksW = Math.ceil(geometry.outSize[2] / (4 * variant.vectors));
  const [od, oh, ow] = geometry.outSize;
  const out = empty([geometry.batch, geometry.outChannels, od, oh, ow], op);
  const workgroupSize = spec.workgroupSize ?? kernelOptions.workgroupSize;
  const uniforms = geometryUniforms(geometry, blocksW, bias !== null, workgroupSize, variant.quads);
  const quadGroups = uniforms.out_quads / variant.quads;
  // A binding may not be empty, so without a bias the packed weight is bound
  // in its place (the kernel does not read it).
  const biasBuffer = bias ?? packed;
  const weight = weightBuffer(op, packed, spec.bindings[1]);
  launch(spec, {
    label: op,
    uniforms,
    buffers: [
      { buffer: x.buffer(op), bytes: x.bytes },
      { buffer: weight.buffer, bytes: weight.bytes },
      { buffer: biasBuffer.buffer(op), bytes: biasBuffer.bytes },
      { buffer: out.buffer(op), bytes: out.bytes },
    ],
    workgroups: geometry.batch * quadGroups * uniforms.groups_per_plane,
  });
  weight.release();
  return out;
}
