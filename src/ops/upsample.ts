// upsample3d with the semantics of torch.nn.functional.interpolate (modes
// 'trilinear' and 'nearest'), and its backward as a gather.
//
// Layout: x is [N, C, D, H, W]; the output is [N, C, outD, outH, outW].

import { record } from '../autograd/node.js';
import { checkOutput } from '../debug.js';
import {
  axisTaps,
  upsampleBackward,
  upsampleForward,
  uploadTable,
  type Triple,
  type UpsampleMode,
} from '../kernels/upsample.js';
import { formatShape, type Tensor } from '../tensor.js';

export type { UpsampleMode } from '../kernels/upsample.js';

export interface Upsample3dOptions {
  /**
   * Scale factor, one for all axes or one per axis (D, H, W). The output
   * has floor(in * scale) positions. Give scale or size, not both.
   */
  scale?: number | readonly [number, number, number];
  /** Output size, one for all axes or one per axis (D, H, W). */
  size?: number | readonly [number, number, number];
  /** 'linear' (trilinear) or 'nearest' (the default, as in PyTorch). */
  mode?: UpsampleMode;
  /**
   * Linear mode only: map the corner voxel centres of input and output
   * onto each other (PyTorch's align_corners=True). Default false.
   */
  alignCorners?: boolean;
}

function perAxis(
  op: string,
  name: string,
  value: number | readonly number[],
  valid: (v: number) => boolean,
  expected: string,
): Triple {
  const list = typeof value === 'number' ? [value, value, value] : [...value];
  if (list.length !== 3 || !list.every(valid)) {
    throw new RangeError(
      `${op}: ${name} must be ${expected}, one or three of them, ` +
        `got ${JSON.stringify(value)}`,
    );
  }
  return list as Triple;
}

/** Checks the options; returns the output size and the scale factors given. */
function resolveSize(
  op: string,
  x: Tensor,
  options: Upsample3dOptions,
): { outSize: Triple; scale: Triple | null } {
  const inSize = x.shape.slice(2);
  if ((options.scale === undefined) === (options.size === undefined)) {
    const given = options.scale === undefined ? 'neither' : 'both';
    throw new RangeError(
      `${op}: give exactly one of scale and size (got ${given})`,
    );
  }
  if (options.size !== undefined) {
    const isSize = (v: number) => Number.isInteger(v) && v >= 1;
    const outSize = perAxis(op, 'size', options.size, isSize, 'a positive integer');
    return { outSize, scale: null };
  }
  const isScale = (v: number) => Number.isFinite(v) && v > 0;
  const scale = perAxis(op, 'scale', options.scale!, isScale, 'a positive number');
  // PyTorch's output size: floor(in * scale), computed in double.
  const outSize = inSize.map((s, i) => Math.floor(s * scale[i])) as Triple;
  if (outSize.some((s) => s < 1)) {
    throw new RangeError(
      `${op}: scale ${formatShape(scale)} turns input ${formatShape(x.shape)} ` +
        `into an empty output ${formatShape(outSize)}`,
    );
  }
  return { outSize, scale };
}

/**
 * Resamples x [N, C, D, H, W] to a new grid like
 * torch.nn.functional.interpolate with mode 'trilinear' ('linear' here) or
 * 'nearest'. Per axis, output position dst reads source coordinate
 * - linear, alignCorners: dst * (in - 1) / (out - 1);
 * - linear: (dst + 0.5) * ratio - 0.5, clamped at 0;
 * - nearest: min(floor(dst * ratio), in - 1) (PyTorch's legacy nearest);
 * where ratio is 1 / scale when a scale is given and in / out when a size
 * is given, as in PyTorch. Linear mode blends the two inputs around the
 * coordinate.
 *
 * The gradient is a gather: each input sums the upstream gradient of the
 * output positions that read it, times their weights, so no atomics are
 * needed. For an integer scale s those are at most s + 2 positions per
 * axis. For any other size they are the contiguous run of positions whose
 * taps include the input, found per axis on the CPU, which keeps the
 * window bounded by about out / in + 2 positions per axis.
 *
 * @example
 * const y = upsample3d(x, { scale: 2, mode: 'linear' });
 * const z = upsample3d(x, { size: [7, 9, 11], mode: 'nearest' });
 */
export function upsample3d(x: Tensor, options: Upsample3dOptions): Tensor {
  const op = 'upsample3d';
  if (x.rank !== 5) {
    throw new RangeError(
      `${op}: input ${formatShape(x.shape)} must be [N, C, D, H, W] (rank 5)`,
    );
  }
  if (x.size === 0) {
    throw new RangeError(`${op}: input ${formatShape(x.shape)} has no elements`);
  }
  const mode = options.mode ?? 'nearest';
  if (mode !== 'linear' && mode !== 'nearest') {
    throw new RangeError(
      `${op}: mode must be 'linear' or 'nearest', got ${JSON.stringify(mode)}`,
    );
  }
  const alignCorners = options.alignCorners ?? false;
  if (alignCorners && mode === 'nearest') {
    throw new RangeError(
      `${op}: alignCorners applies to mode 'linear' only, as in PyTorch`,
    );
  }
  const { outSize, scale } = resolveSize(op, x, options);
  const inSize = x.shape.slice(2) as Triple;

  const axes = inSize.map((s, i) =>
    axisTaps(s, outSize[i], scale?.[i] ?? null, mode, alignCorners),
  );
  const table = uploadTable(axes, inSize);
  const out = upsampleForward(op, x, mode, outSize, table);
  checkOutput(op, out, [x]);
  record(op, out, [x], [table.table], (grad, [savedTable]) => [
    upsampleBackward(op, grad, x.shape, { ...table, table: savedTable }),
  ]);
  table.table.dispose();
  return out;
}
