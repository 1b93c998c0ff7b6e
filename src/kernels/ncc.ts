// Launchers of the local NCC kernels. Forward: ncc_moments (box along D),
// ncc_box (along H), ncc_cc (along W, then cc and its coefficients, boxed
// along W). Backward: ncc_box (along H), ncc_grad (along D, then the
// gradients).
//
// Intermediates are quad volumes: each row of W voxels is cut into
// ceil(W / 4) quads of 4 voxels, and each quad stores five vec4 channels.
// Every intermediate access is then one vec4 load or store, several times
// cheaper than four f32 accesses on CPU adapters such as llvmpipe (on this
// project's 2-core test machine a vec4 copy kernel ran about 10 times
// faster than an f32 one). Inputs and gradients use vec4 bindings too when
// W % 4 == 0.
//
// NOTE: forward and backward together make about 63 vec4 accesses per
// quad against the 4 of reading a, b and writing their gradients once, so
// the W4 benchmark (128^3, window 9) reaches only about 5% of the copy
// kernel's bandwidth on llvmpipe. Fusing the D and H passes over tiles of
// rows would remove an estimated quarter of the accesses.

import { empty, type Tensor } from '../tensor.js';
import { launch, workgroupsFor, type KernelSpec } from './launch.js';
import { sumToScalar } from './loss_sum.js';
import { quadLoader, quadStorer, volumeType } from './quad_io.js';

export type Triple = [number, number, number];

/** Positions along D or H that one invocation of a sliding pass covers. */
export const NCC_SEGMENT = 32;

/** Channels per quad of an intermediate volume (Sa, Sb, Saa, Sbb, Sab). */
const CHANNELS = 5;

// ---- generated WGSL -------------------------------------------------------

/**
 * Code of ncc_cc's register windows for a box of radius `radius` along W:
 * box_w sums the quads shifted by -radius..radius voxels, taking the quads
 * w0..w(2 half) around the output quad, half = ceil(radius / 4).
 */
export function boxWindowCode(radius: number): Record<string, string> {
  const half = Math.ceil(radius / 4);
  const slots = [...Array(2 * half + 1).keys()];
  const terms: string[] = [];
  for (let offset = -radius; offset <= radius; offset++) {
    const quad = Math.floor(offset / 4);
    const shift = offset - 4 * quad;
    const low = `w${quad + half}`;
    const term = shift === 0 ? low : `shift_channels(${low}, w${quad + half + 1}, ${shift}u)`;
    terms.push(`  total = add_channels(total, ${term});`);
  }
  const parameters = slots.map((k) => `w${k}: Channels`).join(', ');
  const window = (name: string) => slots.map((k) => `${name}_${k}`).join(', ');
  const shift = (name: string, incoming: string) =>
    slots
      .map((k) => `${name}_${k} = ${k === slots.length - 1 ? incoming : `${name}_${k + 1}`};`)
      .join('\n    ');
  return {
    HALF: String(half),
    BOX_W: [
      `fn box_w(${parameters}) -> Channels {`,
      '  var total = zero_channels();',
      ...terms,
      '  return total;',
      '}',
    ].join('\n'),
    WINDOW_DECLARE: [
      ...slots.map((k) => `var input_${k} = zero_channels();`),
      ...slots.map((k) => `var coefficient_${k} = zero_channels();`),
    ].join('\n  '),
    WINDOW_SHIFT: shift('input', 'load_sums(row, p + HALF)'),
    BOX_INPUTS: `box_w(${window('input')})`,
    COEFFICIENT_SHIFT: shift('coefficient', 'current').replace(/\n {4}/g, '\n      '),
    BOX_COEFFICIENTS: `box_w(${window('coefficient')})`,
  };
}

// ---- specs ----------------------------------------------------------------

const D_WALK_UNIFORMS = [
  ['total', 'u32'],
  ['depth', 'u32'],
  ['height', 'u32'],
  ['width', 'u32'],
  ['quads', 'u32'],
  ['segments', 'u32'],
  ['radius', 'u32'],
] as const;

const specCache = new Map<string, KernelSpec>();

function cachedSpec(key: string, make: () => KernelSpec): KernelSpec {
  let spec = specCache.get(key);
  if (!spec) {
    spec = make();
    specCache.set(key, spec);
  }
  return spec;
}

function momentsSpec(aligned: boolean): KernelSpec {
  return cachedSpec(`moments ${aligned}`, () => ({
    name: 'ncc_moments',
    uniforms: D_WALK_UNIFORMS,
    bindings: [
      { name: 'a', access: 'read', type: volumeType(aligned) },
      { name: 'b', access: 'read', type: volumeType(aligned) },
      { name: 'moments', access: 'read_write', type: 'vec4<f32>' },
    ],
    constants: {
      SEGMENT: NCC_SEGMENT,
      LOAD_INPUTS: [quadLoader('load_a', 'a', aligned), quadLoader('load_b', 'b', aligned)].join(
        '\n\n',
      ),
    },
  }));
}

const BOX_SPEC: KernelSpec = {
  name: 'ncc_box',
  uniforms: [
    ['total', 'u32'],
    ['outer', 'u32'],
    ['length', 'u32'],
    ['quads', 'u32'],
    ['segments', 'u32'],
    ['radius', 'u32'],
  ],
  bindings: [
    { name: 'x', access: 'read', type: 'vec4<f32>' },
    { name: 'out', access: 'read_write', type: 'vec4<f32>' },
  ],
  constants: { SEGMENT: NCC_SEGMENT },
};

function ccSpec(writeCoefficients: boolean, radiusW: number): KernelSpec {
  return cachedSpec(`cc ${writeCoefficients} ${radiusW}`, () => ({
    name: 'ncc_cc',
    uniforms: [
      ['rows', 'u32'],
      ['width', 'u32'],
      ['quads', 'u32'],
      ['inv_window_size', 'f32'],
      ['epsilon', 'f32'],
    ],
    bindings: [
      { name: 'sums', access: 'read', type: 'vec4<f32>' },
      { name: 'coefficients', access: 'read_write', type: 'vec4<f32>' },
      { name: 'partials', access: 'read_write', type: 'vec4<f32>' },
    ],
    constants: { WRITE_COEFFICIENTS: String(writeCoefficients), ...boxWindowCode(radiusW) },
  }));
}

function gradSpec(aligned: boolean): KernelSpec {
  return cachedSpec(`grad ${aligned}`, () => ({
    name: 'ncc_grad',
    uniforms: [...D_WALK_UNIFORMS, ['scale', 'f32']],
    bindings: [
      { name: 'coefficients', access: 'read', type: 'vec4<f32>' },
      { name: 'a', access: 'read', type: volumeType(aligned) },
      { name: 'b', access: 'read', type: volumeType(aligned) },
      { name: 'upstream', access: 'read' },
      { name: 'grad_a', access: 'read_write', type: volumeType(aligned) },
      { name: 'grad_b', access: 'read_write', type: volumeType(aligned) },
    ],
    constants: {
      SEGMENT: NCC_SEGMENT,
      QUAD_IO: [
        quadLoader('load_a', 'a', aligned),
        quadLoader('load_b', 'b', aligned),
        quadStorer('store_grad_a', 'grad_a', aligned),
        quadStorer('store_grad_b', 'grad_b', aligned),
      ].join('\n\n'),
    },
  }));
}

// ---- launchers ------------------------------------------------------------

/** Sizes of a loss on [N, C, D, H, W] volumes with a [D, H, W] window. */
interface Geometry {
  volumes: number;
  depth: number;
  height: number;
  width: number;
  quads: number;
  rows: number;
  radius: Triple;
  aligned: boolean;
}

function geometry(shape: readonly number[], window: Triple): Geometry {
  const [n, c, d, h, w] = shape;
  return {
    volumes: n * c,
    depth: d,
    height: h,
    width: w,
    quads: Math.ceil(w / 4),
    rows: n * c * d * h,
    radius: window.map((k) => (k - 1) / 2) as Triple,
    aligned: w % 4 === 0,
  };
}

/** Uniforms of the passes that walk along D (ncc_moments, ncc_grad). */
function depthWalk(g: Geometry) {
  const segments = Math.ceil(g.depth / NCC_SEGMENT);
  return {
    total: g.volumes * segments * g.height * g.quads,
    depth: g.depth,
    height: g.height,
    width: g.width,
    quads: g.quads,
    segments,
    radius: g.radius[0],
  };
}

function binding(t: Tensor, op: string) {
  return { buffer: t.buffer(op), bytes: t.bytes };
}

/** Allocates an uninitialised quad volume: [rows, quads, 5 channels, 4 lanes]. */
function quadVolume(g: Geometry, op: string): Tensor {
  return empty([g.rows, g.quads, CHANNELS, 4], op);
}

/** Box-sums a quad volume along H. */
function boxAlongH(op: string, x: Tensor, g: Geometry): Tensor {
  const out = quadVolume(g, op);
  const segments = Math.ceil(g.height / NCC_SEGMENT);
  const outer = g.volumes * g.depth;
  const total = outer * segments * g.quads;
  launch(BOX_SPEC, {
    label: `${op} box`,
    uniforms: { total, outer, length: g.height, quads: g.quads, segments, radius: g.radius[1] },
    buffers: [binding(x, op), binding(out, op)],
    workgroups: workgroupsFor(BOX_SPEC, total),
  });
  return out;
}

export interface NccForward {
  /** -mean(cc), shape []. */
  loss: Tensor;
  /**
   * The derivatives of cc with respect to the five window sums, box-summed
   * along W: a quad volume, when requested.
   */
  coefficients: Tensor | null;
}

/**
 * Runs the forward kernels on same-shaped [N, C, D, H, W] volumes `a` and
 * `b` (checked by the caller) with an odd `window` per axis.
 */
export function nccForwardKernels(
  op: string,
  a: Tensor,
  b: Tensor,
  window: Triple,
  epsilon: number,
  withCoefficients: boolean,
): NccForward {
  const g = geometry(a.shape, window);
  const momentsD = quadVolume(g, op);
  const walk = depthWalk(g);
  const moments = momentsSpec(g.aligned);
  launch(moments, {
    label: `${op} moments`,
    uniforms: walk,
    buffers: [binding(a, op), binding(b, op), binding(momentsD, op)],
    workgroups: workgroupsFor(moments, walk.total),
  });
  const momentsDH = boxAlongH(op, momentsD, g);
  momentsD.dispose();

  // The variant without coefficients binds a 4-element stand-in.
  const coefficients = withCoefficients ? quadVolume(g, op) : empty([4], op);
  const partials = empty([g.rows, 4], op);
  const spec = ccSpec(withCoefficients, g.radius[2]);
  launch(spec, {
    label: `${op} cc`,
    uniforms: {
      rows: g.rows,
      width: g.width,
      quads: g.quads,
      inv_window_size: 1 / (window[0] * window[1] * window[2]),
      epsilon,
    },
    buffers: [binding(momentsDH, op), binding(coefficients, op), binding(partials, op)],
    workgroups: workgroupsFor(spec, g.rows),
  });
  momentsDH.dispose();
  if (!withCoefficients) coefficients.dispose();
  const loss = sumToScalar(op, partials, g.rows, [-1 / a.size, 0, 0, 0]);
  partials.dispose();
  return { loss, coefficients: withCoefficients ? coefficients : null };
}

/**
 * Runs the backward kernels: box-sums the forward coefficients along H and
 * D and returns the gradients of the loss with respect to `a` and `b`,
 * given `upstream`, the gradient of the loss (shape []).
 */
export function nccBackwardKernels(
  op: string,
  coefficients: Tensor,
  a: Tensor,
  b: Tensor,
  upstream: Tensor,
  window: Triple,
): [Tensor, Tensor] {
  const g = geometry(a.shape, window);
  const boxed = boxAlongH(op, coefficients, g);
  const gradA = empty(a.shape, op);
  const gradB = empty(b.shape, op);
  const walk = depthWalk(g);
  const spec = gradSpec(g.aligned);
  launch(spec, {
    label: `${op} gradient`,
    uniforms: { ...walk, scale: -1 / a.size },
    buffers: [
      binding(boxed, op),
      binding(a, op),
      binding(b, op),
      binding(upstream, op),
      binding(gradA, op),
      binding(gradB, op),
    ],
    workgroups: workgroupsFor(spec, walk.total),
  });
  boxed.dispose();
  return [gradA, gradB];
}
