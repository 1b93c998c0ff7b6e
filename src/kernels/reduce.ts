// Launchers of the reduction kernels (reduce.wgsl, reduce_rows.wgsl) and
// the planner that splits a reduction into passes.
//
// The planner first drops size-1 axes and merges neighbouring axes that are
// both reduced or both kept, which is valid because tensors are contiguous.
// When the innermost merged axis is reduced, the rows kernel reduces it.
// That is the fast path because it needs no index arithmetic per element.
// Any reduced axes left over then have a kept axis inside them and go to
// the strided kernel.
// Both kernels cut long reductions into pieces of `chunkSize` elements, one
// invocation per piece, and reduce the partials in further passes. This
// spreads a sum over all elements across every CPU thread or GPU core, keeps
// each sequential run short (a blocked form of pairwise summation, so the
// float32 error grows with the number of passes rather than the length),
// and fixes the order of every addition, so results are bitwise
// reproducible on one adapter. No atomics are used.

import { empty, type Tensor } from '../tensor.js';
import { contiguousStrides } from '../ops/shape.js';
import { launch, workgroupsFor, type KernelSpec } from './launch.js';
import { isCpuAdapter, outputsPerInvocation } from './runs.js';

export type ReduceKind = 'sum' | 'max' | 'min';

const COMBINE: Record<ReduceKind, { combine: string; identity: string }> = {
  sum: { combine: 'acc + v', identity: '0.0' },
  // The identities of max and min are infinities, which WGSL has no literal
  // for; the kernels start these accumulators from the first element.
  max: { combine: 'max(acc, v)', identity: 'first' },
  min: { combine: 'min(acc, v)', identity: 'first' },
};

export const reduceOptions = {
  /** Elements one invocation combines when a reduction is split into pieces. */
  chunkSize: 64,
  /** Reductions of at most this many elements per output run in one pass. */
  singlePassLimit: 256,
  /**
   * Layout of the pieces of a row: 'blocked' (contiguous runs, best on CPU
   * adapters), 'interleaved' (strided, coalesced on GPUs) or 'auto'
   * (blocked on fallback adapters such as llvmpipe and SwiftShader).
   */
  rowLayout: 'auto' as 'auto' | 'blocked' | 'interleaved',
};

const ROW_UNIFORMS: KernelSpec['uniforms'] = [
  ['rows', 'u32'],
  ['row_size', 'u32'],
  ['chunks', 'u32'],
  ['chunk_size', 'u32'],
  ['scale', 'f32'],
  ['per_invocation', 'u32'],
];

const STRIDED_UNIFORMS: KernelSpec['uniforms'] = [
  ['out_size', 'u32'],
  ['chunks', 'u32'],
  ['chunk_size', 'u32'],
  ['red_size', 'u32'],
  ['out_rank', 'u32'],
  ['red_rank', 'u32'],
  ['scale', 'f32'],
  ['per_invocation', 'u32'],
  ['out_shape', 'vec4u*2'],
  ['out_strides', 'vec4u*2'],
  ['red_shape', 'vec4u*2'],
  ['red_strides', 'vec4u*2'],
];

const BINDINGS: KernelSpec['bindings'] = [
  { name: 'x', access: 'read' },
  { name: 'out', access: 'read_write' },
];

const specs = new Map<string, KernelSpec>();

function reduceSpec(
  name: 'reduce' | 'reduce_rows',
  kind: ReduceKind,
  interleaved: boolean,
): KernelSpec {
  const key = `${name}|${kind}|${interleaved}`;
  let spec = specs.get(key);
  if (!spec) {
    const constants: Record<string, string> = {
      COMBINE: COMBINE[kind].combine,
      IDENTITY: COMBINE[kind].identity,
    };
    if (name === 'reduce_rows') constants.INTERLEAVED = String(interleaved);
    spec = {
      name,
      uniforms: name === 'reduce' ? STRIDED_UNIFORMS : ROW_UNIFORMS,
      bindings: BINDINGS,
      constants,
    };
    specs.set(key, spec);
  }
  return spec;
}

function useInterleavedRows(): boolean {
  if (reduceOptions.rowLayout === 'auto') return !isCpuAdapter();
  return reduceOptions.rowLayout === 'interleaved';
}

/** Piece length and count for a reduction of `size` elements per output. */
function split(size: number): { chunkSize: number; chunks: number } {
  const chunkSize =
    size <= reduceOptions.singlePassLimit
      ? size
      : Math.max(2, Math.floor(reduceOptions.chunkSize));
  return { chunkSize, chunks: Math.ceil(size / chunkSize) };
}

/** A run of neighbouring axes that are all reduced or all kept. */
interface AxisGroup {
  size: number;
  reduced: boolean;
}

/** Drops size-1 axes and merges neighbouring axes of the same kind. */
export function mergeAxes(
  shape: readonly number[],
  axes: readonly number[],
): AxisGroup[] {
  const groups: AxisGroup[] = [];
  shape.forEach((size, i) => {
    if (size === 1) return;
    const reduced = axes.includes(i);
    const last = groups.at(-1);
    if (last && last.reduced === reduced) last.size *= size;
    else groups.push({ size, reduced });
  });
  return groups;
}

/**
 * Reduces each row of `x`, read as [rows, rowSize], to one element, in as
 * many passes as needed. The result has `shape` (rows elements).
 */
function reduceRows(
  op: string,
  kind: ReduceKind,
  x: Tensor,
  rows: number,
  rowSize: number,
  scale: number,
  shape: readonly number[],
): Tensor {
  const interleaved = useInterleavedRows();
  const spec = reduceSpec('reduce_rows', kind, interleaved);
  let input = x;
  let size = rowSize;
  for (;;) {
    const { chunkSize, chunks } = split(size);
    const last = chunks === 1;
    const out = empty(last ? shape : [rows, chunks], op);
    const perInvocation = outputsPerInvocation(chunkSize);
    launch(spec, {
      label: op,
      uniforms: {
        rows,
        row_size: size,
        chunks,
        chunk_size: chunkSize,
        scale: last ? scale : 1,
        per_invocation: perInvocation,
      },
      buffers: [
        { buffer: input.buffer(op), bytes: rows * size * 4 },
        { buffer: out.buffer(op), bytes: out.bytes },
      ],
      workgroups: workgroupsFor(spec, Math.ceil(rows * chunks / perInvocation)),
    });
    if (input !== x) input.dispose();
    if (last) return out;
    input = out;
    size = chunks;
  }
}

/** One pass of the strided kernel; returns [chunks, outSize] partials. */
function stridedPass(
  op: string,
  spec: KernelSpec,
  x: Tensor,
  kept: { shape: number[]; strides: number[] },
  reduced: { shape: number[]; strides: number[] },
  scale: number,
  shape: readonly number[] | null,
): { out: Tensor; chunks: number } {
  const outSize = kept.shape.reduce((n, d) => n * d, 1);
  const redSize = reduced.shape.reduce((n, d) => n * d, 1);
  const { chunkSize, chunks } = split(redSize);
  const last = chunks === 1;
  const out = empty(last && shape ? shape : [chunks, outSize], op);
  const perInvocation = outputsPerInvocation(chunkSize);
  const outputs = chunks * outSize;
  launch(spec, {
    label: op,
    uniforms: {
      out_size: outSize,
      chunks,
      chunk_size: chunkSize,
      red_size: redSize,
      out_rank: kept.shape.length,
      red_rank: reduced.shape.length,
      scale: last ? scale : 1,
      per_invocation: perInvocation,
      out_shape: kept.shape,
      out_strides: kept.strides,
      red_shape: reduced.shape,
      red_strides: reduced.strides,
    },
    buffers: [
      { buffer: x.buffer(op), bytes: x.bytes },
      { buffer: out.buffer(op), bytes: out.bytes },
    ],
    workgroups: workgroupsFor(spec, Math.ceil(outputs / perInvocation)),
  });
  return { out, chunks };
}

/**
 * Reduces every reduced group of `groups` (the merged axes of `x`), where
 * the innermost group is kept, with the strided kernel. The result has
 * `shape`.
 */
function reduceStrided(
  op: string,
  kind: ReduceKind,
  x: Tensor,
  groups: readonly AxisGroup[],
  scale: number,
  shape: readonly number[],
): Tensor {
  const spec = reduceSpec('reduce', kind, false);
  const strides = contiguousStrides(groups.map((g) => g.size));
  const pick = (reduced: boolean) => {
    const index = groups.flatMap((g, i) => (g.reduced === reduced ? [i] : []));
    return {
      shape: index.map((i) => groups[i].size),
      strides: index.map((i) => strides[i]),
    };
  };
  const kept = pick(false);
  const outSize = kept.shape.reduce((n, d) => n * d, 1);
  const reduced = pick(true);
  let { out, chunks } = stridedPass(op, spec, x, kept, reduced, scale, shape);
  while (chunks > 1) {
    // Partials are [chunks, outSize]: reduce the columns.
    const next = stridedPass(
      op,
      spec,
      out,
      { shape: [outSize], strides: [1] },
      { shape: [chunks], strides: [outSize] },
      scale,
      shape,
    );
    out.dispose();
    ({ out, chunks } = next);
  }
  return out;
}

/**
 * @internal Reduces `x` over `axes` (sorted, non-negative, no repeats) with
 * `kind`, times `scale`, into a new tensor of `shape`, without autograd.
 * Every output must combine at least one element and `shape` must not be
 * empty. reduceKernel in ops/reduce.ts checks both.
 */
export function runReduction(
  op: string,
  kind: ReduceKind,
  x: Tensor,
  axes: readonly number[],
  scale: number,
  shape: readonly number[],
): Tensor {
  return reduceMerged(op, kind, x, mergeAxes(x.shape, axes), scale, shape);
}

function reduceMerged(
  op: string,
  kind: ReduceKind,
  x: Tensor,
  merged: AxisGroup[],
  scale: number,
  shape: readonly number[],
): Tensor {
  let groups = merged;
  let current = x;
  while (groups.some((g) => g.reduced)) {
    const reducedLeft = groups.filter((g) => g.reduced).length;
    const innermost = groups[groups.length - 1];
    let next: Tensor;
    if (innermost.reduced) {
      const rows = current.size / innermost.size;
      const final = reducedLeft === 1;
      next = reduceRows(
        op,
        kind,
        current,
        rows,
        innermost.size,
        final ? scale : 1,
        final ? shape : [rows],
      );
      groups = groups.slice(0, -1);
    } else {
      next = reduceStrided(op, kind, current, groups, scale, shape);
      groups = [];
    }
    if (current !== x) current.dispose();
    current = next;
  }
  if (current === x) {
    // Only size-1 axes were reduced: the data is unchanged apart from scale.
    return scaledCopy(op, x, shape, scale);
  }
  return current;
}

const COPY_SPEC: KernelSpec = {
  name: 'reduce_rows',
  uniforms: ROW_UNIFORMS,
  bindings: BINDINGS,
  constants: { COMBINE: 'acc + v', IDENTITY: '0.0', INTERLEAVED: 'false' },
};

/** Copies `x` into a new tensor of `shape` (same size), times `scale`. */
function scaledCopy(
  op: string,
  x: Tensor,
  shape: readonly number[],
  scale: number,
): Tensor {
  const out = empty(shape, op);
  const perInvocation = outputsPerInvocation(1);
  // A row reduction over rows of one element is a scaled copy.
  launch(COPY_SPEC, {
    label: op,
    uniforms: {
      rows: x.size,
      row_size: 1,
      chunks: 1,
      chunk_size: 1,
      scale,
      per_invocation: perInvocation,
    },
    buffers: [
      { buffer: x.buffer(op), bytes: x.bytes },
      { buffer: out.buffer(op), bytes: out.bytes },
    ],
    workgroups: workgroupsFor(COPY_SPEC, Math.ceil(x.size / perInvocation)),
  });
  return out;
}
