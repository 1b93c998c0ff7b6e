// Launchers of the smoothness (l2 gradient) loss kernels: smoothness.wgsl
// (partial sums, then loss_sum's tree) and smoothness_grad.wgsl. Both read
// the field in quads of 4 voxels (see quad_io.ts).

import { empty, type Tensor } from '../tensor.js';
import { launch, workgroupsFor, type KernelSpec } from './launch.js';
import { sumToScalar } from './loss_sum.js';
import { quadLoader, quadStorer, volumeType } from './quad_io.js';
import { copyValues, rowGroups, type RowGroup } from './row_groups.js';
import { isCpuAdapter } from './runs.js';

/** Positions along D that one invocation walks. */
export const SMOOTHNESS_SEGMENT = 32;

export interface Tile {
  rows: number;
  quads: number;
}

/**
 * Tiles of rows x quads that one invocation walks along D, per kernel, or
 * 'auto'. Larger tiles share more neighbour loads (per quad and step, the
 * forward pass loads 1 + 1 / rows + 1 / quads quads) but hold more
 * registers. 'auto' takes 2x2 forward and 4x4 backward on CPU adapters:
 * the fastest of 1x1, 2x2, 4x2, 2x4 and 4x4 in the W5 benchmark on
 * llvmpipe (2 shared cores, two rounds each, with wide run-to-run noise).
 * GPUs get 1x1, so that neighbouring invocations read neighbouring quads.
 */
export const smoothnessOptions: { forwardTile: Tile | 'auto'; backwardTile: Tile | 'auto' } = {
  forwardTile: 'auto',
  backwardTile: 'auto',
};

function forwardTile(): Tile {
  const tile = smoothnessOptions.forwardTile;
  if (tile !== 'auto') return tile;
  return isCpuAdapter() ? { rows: 2, quads: 2 } : { rows: 1, quads: 1 };
}

function backwardTile(): Tile {
  const tile = smoothnessOptions.backwardTile;
  if (tile !== 'auto') return tile;
  return isCpuAdapter() ? { rows: 4, quads: 4 } : { rows: 1, quads: 1 };
}

const GEOMETRY = [
  ['total', 'u32'],
  ['depth', 'u32'],
  ['height', 'u32'],
  ['width', 'u32'],
  ['quads', 'u32'],
  ['segments', 'u32'],
  ['tiles_h', 'u32'],
  ['tiles_q', 'u32'],
] as const;

const specs = new Map<string, KernelSpec>();

function tileConstants(tile: Tile) {
  return { SEGMENT: SMOOTHNESS_SEGMENT, TILE_H: tile.rows, TILE_Q: tile.quads };
}

function forwardSpec(aligned: boolean): KernelSpec {
  const constants = {
    ...tileConstants(forwardTile()),
    LOAD_FLOW: quadLoader('load_flow', 'flow', aligned) };
  const key = `forward ${JSON.stringify(constants)}`;
  let spec = specs.get(key);
  if (!spec) {
    spec = {
      name: 'smoothness',
      uniforms: GEOMETRY,
      bindings: [
        { name: 'flow', access: 'read', type: volumeType(aligned) },
        { name: 'partials', access: 'read_write', type: 'vec4<f32>' },
      ],
      constants,
    };
    specs.set(key, spec);
  }
  return spec;
}

function gradSpec(aligned: boolean): KernelSpec {
  const quadIo = [
    quadLoader('load_flow', 'flow', aligned),
    quadStorer('store_grad', 'grad', aligned),
  ].join('\n\n');
  const constants = { ...tileConstants(backwardTile()), QUAD_IO: quadIo };
  const key = `grad ${JSON.stringify(constants)}`;
  let spec = specs.get(key);
  if (!spec) {
    spec = {
      name: 'smoothness_grad',
      uniforms: [...GEOMETRY, ['weight_d', 'f32'], ['weight_h', 'f32'], ['weight_w', 'f32']],
      bindings: [
        { name: 'flow', access: 'read', type: volumeType(aligned) },
        { name: 'upstream', access: 'read' },
        { name: 'grad', access: 'read_write', type: volumeType(aligned) },
      ],
      constants,
    };
    specs.set(key, spec);
  }
  return spec;
}

function geometry(shape: readonly number[], tile: Tile) {
  const [n, c, d, h, w] = shape;
  const quads = Math.ceil(w / 4);
  const segments = Math.ceil(d / SMOOTHNESS_SEGMENT);
  const tilesH = Math.ceil(h / tile.rows);
  const tilesQ = Math.ceil(quads / tile.quads);
  return {
    total: n * c * segments * tilesH * tilesQ,
    depth: d,
    height: h,
    width: w,
    quads,
    segments,
    tiles_h: tilesH,
    tiles_q: tilesQ,
  };
}

/**
 * Weight of each axis's sum of squared differences in the loss:
 * 1 / (3 * number of differences along that axis).
 */
export function axisWeights(shape: readonly number[]): [number, number, number] {
  const [n, c, d, h, w] = shape;
  const volumes = n * c;
  return [
    1 / (3 * volumes * (d - 1) * h * w),
    1 / (3 * volumes * d * (h - 1) * w),
    1 / (3 * volumes * d * h * (w - 1)),
  ];
}

/**
 * Returns channel volumes `group` of a [N, C, D, H, W] field as a tensor of
 * [1, count, D, H, W]: the field itself when the group is all of it, else
 * a copy (the caller disposes it). Volumes are independent in this loss.
 */
function groupVolumes(op: string, flow: Tensor, group: RowGroup): Tensor {
  const [n, c, d, h, w] = flow.shape;
  if (group.count === n * c) return flow;
  const voxels = d * h * w;
  const part = empty([1, group.count, d, h, w], op);
  copyValues(op, flow, group.first * voxels, part, 0, group.count * voxels);
  return part;
}

function volumeGroups(op: string, flow: Tensor): RowGroup[] {
  const [n, c, d, h, w] = flow.shape;
  return rowGroups(op, flow.shape, n * c, d * h * w * 4);
}

/**
 * Computes the loss of a [N, C, D, H, W] field with D, H, W >= 2 (checked
 * by the caller). A field larger than one storage binding runs in groups of
 * channel volumes.
 */
export function smoothnessForwardKernel(op: string, flow: Tensor): Tensor {
  const groups = volumeGroups(op, flow);
  const partialsPerVolume = geometry(
    [1, 1, ...flow.shape.slice(2)],
    forwardTile(),
  ).total;
  const total = partialsPerVolume * flow.shape[0] * flow.shape[1];
  const partials = empty([total, 4], op);
  for (const group of groups) {
    const part = groupVolumes(op, flow, group);
    const uniforms = geometry(part.shape, forwardTile());
    const spec = forwardSpec(uniforms.width % 4 === 0);
    const groupPartials = part === flow ? partials : empty([uniforms.total, 4], op);
    launch(spec, {
      label: op,
      uniforms,
      buffers: [
        { buffer: part.buffer(op), bytes: part.bytes },
        { buffer: groupPartials.buffer(op), bytes: groupPartials.bytes },
      ],
      workgroups: workgroupsFor(spec, uniforms.total),
    });
    if (part !== flow) {
      const offset = group.first * partialsPerVolume * 4;
      copyValues(op, groupPartials, 0, partials, offset, groupPartials.size);
      part.dispose();
      groupPartials.dispose();
    }
  }
  const [wd, wh, ww] = axisWeights(flow.shape);
  const loss = sumToScalar(op, partials, total, [wd, wh, ww, 0]);
  partials.dispose();
  return loss;
}

/** Computes the gradient of the loss with respect to `flow`, given the upstream scalar. */
export function smoothnessBackwardKernel(op: string, flow: Tensor, upstream: Tensor): Tensor {
  const [wd, wh, ww] = axisWeights(flow.shape);
  const grad = empty(flow.shape, op);
  const voxels = flow.shape[2] * flow.shape[3] * flow.shape[4];
  for (const group of volumeGroups(op, flow)) {
    const part = groupVolumes(op, flow, group);
    const uniforms = geometry(part.shape, backwardTile());
    const spec = gradSpec(uniforms.width % 4 === 0);
    const groupGrad = part === flow ? grad : empty(part.shape, op);
    launch(spec, {
      label: `${op} gradient`,
      uniforms: { ...uniforms, weight_d: 2 * wd, weight_h: 2 * wh, weight_w: 2 * ww },
      buffers: [
        { buffer: part.buffer(op), bytes: part.bytes },
        { buffer: upstream.buffer(op), bytes: upstream.bytes },
        { buffer: groupGrad.buffer(op), bytes: groupGrad.bytes },
      ],
      workgroups: workgroupsFor(spec, uniforms.total),
    });
    if (part !== flow) {
      copyValues(op, groupGrad, 0, grad, group.first * voxels, groupGrad.size);
      part.dispose();
      groupGrad.dispose();
    }
  }
  return grad;
}
