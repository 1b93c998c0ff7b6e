// Launchers of the normalisation kernels over a [rows, length] view:
// norm_stats and norm_merge (statistics), norm_apply (forward),
// norm_grad_partials and norm_grad (backward), and the running-statistics
// kernels of batch norm. The kernels over a short strided axis are in
// norm_fused.ts.

import { empty, type Tensor } from '../tensor.js';
import { launch, workgroupsFor, type KernelSpec } from './launch.js';
import { placeholderBuffer } from './placeholder.js';
import { runReduction } from './reduce.js';

export const normOptions = {
  /** Elements of a row that one invocation handles in the row kernels. */
  chunkSize: 256,
  /** Partials that one invocation of norm_merge combines per pass. */
  mergeBlock: 64,
  /**
   * Layer norms over at most this many elements run on the fused kernels
   * (one invocation per row); longer ones on the row kernels.
   */
  fusedLimit: 1024,
  /** Statistics that one invocation of norm_affine_grad sums over. */
  affinePiece: 256,
};

/**
 * How a normalisation reads x as [rows, length]: row r uses statistic
 * (r / rowsPerStat) % statCount and, unless perPosition, the weight of
 * channel r % channels; with perPosition the weight of its position in
 * the row.
 */
export interface RowGeometry {
  rows: number;
  length: number;
  rowsPerStat: number;
  statCount: number;
  channels: number;
  perPosition: boolean;
}

const ROW_UNIFORMS = [
  ['rows', 'u32'],
  ['length', 'u32'],
  ['chunks', 'u32'],
  ['chunk_size', 'u32'],
  ['rows_per_stat', 'u32'],
  ['stat_count', 'u32'],
] as const;

const AFFINE_UNIFORMS = [
  ['channels', 'u32'],
  ['per_position', 'u32'],
  ['has_weight', 'u32'],
] as const;

const STATS_SPEC: KernelSpec = {
  name: 'norm_stats',
  uniforms: ROW_UNIFORMS,
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'partials', access: 'read_write', type: 'vec4<f32>' },
  ],
};

const MERGE_SPEC: KernelSpec = {
  name: 'norm_merge',
  uniforms: [
    ['stat_count', 'u32'],
    ['count', 'u32'],
    ['blocks', 'u32'],
    ['block_size', 'u32'],
    ['finish', 'u32'],
    ['eps', 'f32'],
  ],
  bindings: [
    { name: 'partials_in', access: 'read', type: 'vec4<f32>' },
    { name: 'partials_out', access: 'read_write', type: 'vec4<f32>' },
  ],
};

const APPLY_SPEC: KernelSpec = {
  name: 'norm_apply',
  uniforms: [...ROW_UNIFORMS, ...AFFINE_UNIFORMS, ['has_bias', 'u32']],
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'stats', access: 'read', type: 'vec4<f32>' },
    { name: 'weight', access: 'read' },
    { name: 'bias', access: 'read' },
    { name: 'out', access: 'read_write' },
  ],
};

const GRAD_PARTIALS_SPEC: KernelSpec = {
  name: 'norm_grad_partials',
  uniforms: [...ROW_UNIFORMS, ...AFFINE_UNIFORMS, ['affine_partials', 'u32']],
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'upstream', access: 'read' },
    { name: 'stats', access: 'read', type: 'vec4<f32>' },
    { name: 'weight', access: 'read' },
    { name: 'stat_partials', access: 'read_write' },
    { name: 'weight_partials', access: 'read_write' },
    { name: 'bias_partials', access: 'read_write' },
  ],
};

const GRAD_SPEC: KernelSpec = {
  name: 'norm_grad',
  uniforms: [
    ...ROW_UNIFORMS,
    ...AFFINE_UNIFORMS,
    ['batch_stats', 'u32'],
    ['inv_count', 'f32'],
  ],
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'upstream', access: 'read' },
    { name: 'stats', access: 'read', type: 'vec4<f32>' },
    { name: 'weight', access: 'read' },
    { name: 'sums', access: 'read' },
    { name: 'grad', access: 'read_write' },
  ],
};

const RUNNING_UPDATE_SPEC: KernelSpec = {
  name: 'norm_running_update',
  uniforms: [
    ['channels', 'u32'],
    ['momentum', 'f32'],
    ['unbias', 'f32'],
  ],
  bindings: [
    { name: 'stats', access: 'read', type: 'vec4<f32>' },
    { name: 'running_mean', access: 'read_write' },
    { name: 'running_var', access: 'read_write' },
  ],
};

const RUNNING_STATS_SPEC: KernelSpec = {
  name: 'norm_running_stats',
  uniforms: [
    ['channels', 'u32'],
    ['eps', 'f32'],
  ],
  bindings: [
    { name: 'running_mean', access: 'read' },
    { name: 'running_var', access: 'read' },
    { name: 'stats', access: 'read_write', type: 'vec4<f32>' },
  ],
};

/** Binding of a tensor, or the placeholder buffer for a missing one. */
export function bindOptional(
  op: string,
  t: Tensor | null,
): { buffer: GPUBuffer; bytes: number } {
  return t ? { buffer: t.buffer(op), bytes: t.bytes } : placeholderBuffer();
}

export function bind(op: string, t: Tensor): { buffer: GPUBuffer; bytes: number } {
  return { buffer: t.buffer(op), bytes: t.bytes };
}

function rowUniforms(g: RowGeometry, weight: Tensor | null) {
  const chunkSize = Math.max(1, Math.floor(normOptions.chunkSize));
  return {
    rows: g.rows,
    length: g.length,
    chunks: Math.ceil(g.length / chunkSize),
    chunk_size: chunkSize,
    rows_per_stat: g.rowsPerStat,
    stat_count: g.statCount,
    channels: g.channels,
    per_position: g.perPosition ? 1 : 0,
    has_weight: weight ? 1 : 0,
  };
}

/**
 * Mean and biased variance of every statistic of the [rows, length] view,
 * as a [statCount, 4] tensor of vec4(mean, 1 / sqrt(var + eps), var, n).
 */
export function rowStatistics(
  op: string,
  x: Tensor,
  g: RowGeometry,
  eps: number,
): Tensor {
  const uniforms = rowUniforms(g, null);
  let partials = empty([g.rows * uniforms.chunks, 4], op);
  launch(STATS_SPEC, {
    label: `${op} statistics`,
    uniforms,
    buffers: [bind(op, x), bind(op, partials)],
    workgroups: workgroupsFor(STATS_SPEC, g.rows * uniforms.chunks),
  });

  // Merge each statistic's partials in fixed blocks until one is left.
  const blockSize = Math.max(2, Math.floor(normOptions.mergeBlock));
  let count = (g.rows / g.statCount) * uniforms.chunks;
  for (;;) {
    const blocks = Math.ceil(count / blockSize);
    const finish = blocks === 1;
    const merged = empty([g.statCount * blocks, 4], op);
    launch(MERGE_SPEC, {
      label: `${op} statistics merge`,
      uniforms: {
        stat_count: g.statCount,
        count,
        blocks,
        block_size: blockSize,
        finish: finish ? 1 : 0,
        eps,
      },
      buffers: [bind(op, partials), bind(op, merged)],
      workgroups: workgroupsFor(MERGE_SPEC, g.statCount * blocks),
    });
    partials.dispose();
    partials = merged;
    count = blocks;
    if (finish) return partials;
  }
}

/** (x - mean) * rstd * weight + bias over the [rows, length] view. */
export function rowApply(
  op: string,
  x: Tensor,
  stats: Tensor,
  g: RowGeometry,
  weight: Tensor | null,
  bias: Tensor | null,
): Tensor {
  const uniforms = { ...rowUniforms(g, weight), has_bias: bias ? 1 : 0 };
  const out = empty(x.shape, op);
  launch(APPLY_SPEC, {
    label: op,
    uniforms,
    buffers: [
      bind(op, x),
      bind(op, stats),
      bindOptional(op, weight),
      bindOptional(op, bias),
      bind(op, out),
    ],
    workgroups: workgroupsFor(APPLY_SPEC, g.rows * uniforms.chunks),
  });
  return out;
}

export interface RowGradSums {
  /** [statCount, 2]: sum of dxhat and of dxhat * xhat per statistic. */
  statSums: Tensor;
  /** [channels] weight and bias gradients, or null when not asked for. */
  weightGrad: Tensor | null;
  biasGrad: Tensor | null;
}

/**
 * Sums of the closed-form gradient per statistic, and, when `affine` is
 * set (per-channel weights only), the weight and bias gradients.
 */
export function rowGradSums(
  op: string,
  x: Tensor,
  upstream: Tensor,
  stats: Tensor,
  g: RowGeometry,
  weight: Tensor | null,
  affine: boolean,
): RowGradSums {
  const uniforms = { ...rowUniforms(g, weight), affine_partials: affine ? 1 : 0 };
  const pieces = g.rows * uniforms.chunks;
  const statPartials = empty([pieces, 2], op);
  // Unused outputs still need a binding each; two writable bindings may
  // not share one placeholder buffer, so they get one element each.
  const weightPartials = empty([affine ? pieces : 1], op);
  const biasPartials = empty([affine ? pieces : 1], op);
  launch(GRAD_PARTIALS_SPEC, {
    label: `${op} gradient sums`,
    uniforms,
    buffers: [
      bind(op, x),
      bind(op, upstream),
      bind(op, stats),
      bindOptional(op, weight),
      bind(op, statPartials),
      bind(op, weightPartials),
      bind(op, biasPartials),
    ],
    workgroups: workgroupsFor(GRAD_PARTIALS_SPEC, pieces),
  });

  // Rows of one statistic: rowsPerStat consecutive ones, repeating every
  // rowsPerStat * statCount rows.
  const period = g.rowsPerStat * g.statCount;
  const statView = statPartials.share([
    g.rows / period,
    g.statCount,
    g.rowsPerStat,
    uniforms.chunks,
    2,
  ]);
  const statSums = runReduction(`${op} gradient sums`, 'sum', statView, [0, 2, 3], 1, [
    g.statCount,
    2,
  ]);
  statView.dispose();
  statPartials.dispose();

  const perChannel = (partials: Tensor): Tensor | null => {
    if (!affine) {
      partials.dispose();
      return null;
    }
    const view = partials.share([g.rows / g.channels, g.channels, uniforms.chunks]);
    const label = `${op} affine gradient`;
    const summed = runReduction(label, 'sum', view, [0, 2], 1, [g.channels]);
    view.dispose();
    partials.dispose();
    return summed;
  };
  return {
    statSums,
    weightGrad: perChannel(weightPartials),
    biasGrad: perChannel(biasPartials),
  };
}

/**
 * Input gradient over the [rows, length] view. `statSums` comes from
 * rowGradSums; pass null when the statistics are fixed (batch norm in
 * evaluation mode), which makes the gradient rstd * upstream * weight.
 */
export function rowGrad(
  op: string,
  x: Tensor,
  upstream: Tensor,
  stats: Tensor,
  g: RowGeometry,
  weight: Tensor | null,
  statSums: Tensor | null,
): Tensor {
  const elementsPerStat = (g.rows / g.statCount) * g.length;
  const uniforms = {
    ...rowUniforms(g, weight),
    batch_stats: statSums ? 1 : 0,
    inv_count: 1 / elementsPerStat,
  };
  const grad = empty(x.shape, op);
  launch(GRAD_SPEC, {
    label: `${op} input gradient`,
    uniforms,
    buffers: [
      bind(op, x),
      bind(op, upstream),
      bind(op, stats),
      bindOptional(op, weight),
      bindOptional(op, statSums),
      bind(op, grad),
    ],
    workgroups: workgroupsFor(GRAD_SPEC, g.rows * uniforms.chunks),
  });
  return grad;
}

/**
 * Updates running statistics in place from batch `stats` ([C] vec4 of
 * rowStatistics) over `count` elements per channel, as PyTorch's batch
 * norm does in training mode.
 */
export function updateRunningStats(
  op: string,
  stats: Tensor,
  runningMean: Tensor,
  runningVar: Tensor,
  momentum: number,
  count: number,
): void {
  const channels = runningMean.size;
  launch(RUNNING_UPDATE_SPEC, {
    label: `${op} running statistics`,
    uniforms: { channels, momentum, unbias: count / (count - 1) },
    buffers: [bind(op, stats), bind(op, runningMean), bind(op, runningVar)],
    workgroups: workgroupsFor(RUNNING_UPDATE_SPEC, channels),
  });
  runningMean.markModified();
  runningVar.markModified();
}

/** [C] vec4 statistics from running mean and variance (evaluation mode). */
export function runningStatistics(
  op: string,
  runningMean: Tensor,
  runningVar: Tensor,
  eps: number,
): Tensor {
  const channels = runningMean.size;
  const stats = empty([channels, 4], op);
  launch(RUNNING_STATS_SPEC, {
    label: `${op} running statistics`,
    uniforms: { channels, eps },
    buffers: [bind(op, runningMean), bind(op, runningVar), bind(op, stats)],
    workgroups: workgroupsFor(RUNNING_STATS_SPEC, channels),
  });
  return stats;
}
