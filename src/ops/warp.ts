// warp (VoxelMorph's spatial transformer), composeFlows and
// integrateVelocity, with backward.
//
// Layout: image [N, C, D, H, W]; flow [N, 3, D, H, W] holding displacements
// in voxels along (D, H, W), in that channel order. warp is a pull
// (backward) warp: output voxel p takes the image at p + flow(p).

import { record } from '../autograd/node.js';
import { warpBackward, warpForward } from '../kernels/warp.js';
import { formatShape, type Tensor } from '../tensor.js';
import { add, scale } from './elementwise.js';

export type WarpMode = 'linear' | 'nearest';

export interface WarpOptions {
  /** 'linear' (trilinear, the default) or 'nearest' (for label maps). */
  mode?: WarpMode;
}

function checkRank5(op: string, name: string, t: Tensor, layout: string): void {
  if (t.rank !== 5) {
    throw new RangeError(
      `${op}: ${name} ${formatShape(t.shape)} must have 5 dimensions ${layout}`,
    );
  }
}

function checkFlow(op: string, name: string, flow: Tensor): void {
  checkRank5(op, name, flow, '[N, 3, D, H, W]');
  if (flow.shape[1] !== 3) {
    throw new RangeError(
      `${op}: ${name} ${formatShape(flow.shape)} must have 3 channels ` +
        '(displacements along D, H, W)',
    );
  }
}

/**
 * @internal Throws unless image [N, C, D, H, W] and flow [N, 3, D, H, W]
 * have the same batch size and spatial shape.
 */
export function checkWarpShapes(op: string, image: Tensor, flow: Tensor): void {
  checkRank5(op, 'image', image, '[N, C, D, H, W]');
  checkFlow(op, 'flow', flow);
  const imageShape = formatShape(image.shape);
  const flowShape = formatShape(flow.shape);
  if (image.shape[0] !== flow.shape[0]) {
    throw new RangeError(
      `${op}: image ${imageShape} and flow ${flowShape} must have the same ` +
        'batch size',
    );
  }
  if (image.shape.slice(2).some((size, i) => size !== flow.shape[i + 2])) {
    throw new RangeError(
      `${op}: image ${imageShape} and flow ${flowShape} must have the same ` +
        'spatial shape (D, H, W)',
    );
  }
}

/**
 * Samples `image` [N, C, D, H, W] at p + flow(p) for every voxel p, with
 * flow [N, 3, D, H, W] in voxels along (D, H, W). 'linear' interpolates
 * trilinearly and takes corners outside the volume as 0; it equals
 * VoxelMorph's SpatialTransformer, that is grid_sample with
 * align_corners=True and padding_mode='zeros' on the normalised grid. A
 * zero flow returns the image exactly, and an integer flow shifts it
 * exactly. Gradients flow to the image and to the flow; the image gradient
 * is a deterministic scatter (see src/kernels/warp_backward.wgsl).
 *
 * 'nearest' takes the voxel at round(p + flow(p)) (ties at .5 go to the
 * even index along each axis), or 0 outside the volume, so the output holds
 * only values of the input and 0. NOTE: 'nearest' records no gradient: its
 * output does not require one, unlike grid_sample's nearest mode, which
 * passes a gradient to the image.
 *
 * NOTE: the image, the flow and the output are each bound whole, so each
 * must fit in the device's maxStorageBufferBindingSize (128 MiB on
 * lavapipe), and the image gradient needs another 8 bytes per image
 * element for its fixed-point sums. A one-hot [1, 36, 128, 128, 128] label
 * map (302 MB) is over that limit: warp fewer channels at a time.
 *
 * @example
 * // image [1, 1, D, H, W], flow [1, 3, D, H, W]
 * const moved = warp(image, flow);
 * const labels = warp(labelMap, flow, { mode: 'nearest' });
 */
export function warp(
  image: Tensor,
  flow: Tensor,
  options: WarpOptions = {},
): Tensor {
  const op = 'warp';
  const mode = options.mode ?? 'linear';
  if (mode !== 'linear' && mode !== 'nearest') {
    throw new RangeError(
      `${op}: mode must be 'linear' or 'nearest', got ${JSON.stringify(mode)}`,
    );
  }
  checkWarpShapes(op, image, flow);
  const out = warpForward(op, mode, image, flow);
  if (mode === 'nearest') return out;

  const inputs = [image, flow];
  return record(op, out, inputs, inputs, (g, [savedImage, savedFlow]) => {
    const gradients = warpBackward(op, g, savedImage, savedFlow, {
      image: image.requiresGrad,
      flow: flow.requiresGrad,
    });
    return [gradients.image, gradients.flow];
  });
}

/**
 * Composes two flows [N, 3, D, H, W] into the flow c of warping by `a` and
 * then by `b`: warp(warp(x, a), b) = warp(x, c), exactly for integer flows
 * and up to interpolation otherwise, with c = b + warp(a, b). Gradients
 * flow to both inputs.
 */
export function composeFlows(a: Tensor, b: Tensor): Tensor {
  const op = 'composeFlows';
  checkFlow(op, 'first flow', a);
  checkFlow(op, 'second flow', b);
  if (a.shape.some((size, i) => size !== b.shape[i])) {
    throw new RangeError(
      `${op}: flows ${formatShape(a.shape)} and ${formatShape(b.shape)} must ` +
        'have the same shape',
    );
  }
  const moved = warp(a, b);
  const composed = add(b, moved);
  moved.dispose();
  return composed;
}

/**
 * Integrates a stationary velocity field v [N, 3, D, H, W] (voxels) into a
 * displacement by scaling and squaring, as VoxelMorph's VecInt: the field
 * starts as v / 2^steps and is composed with itself `steps` times,
 * field = field + warp(field, field). Gradients flow to v.
 */
export function integrateVelocity(v: Tensor, steps = 7): Tensor {
  const op = 'integrateVelocity';
  checkFlow(op, 'velocity', v);
  if (!Number.isInteger(steps) || steps < 0) {
    throw new RangeError(`${op}: steps must be an integer >= 0, got ${steps}`);
  }
  let field = scale(v, 2 ** -steps);
  for (let step = 0; step < steps; step++) {
    // The autograd graph keeps what backward needs, so the intermediate
    // tensors can be released here.
    const moved = warp(field, field);
    const next = add(field, moved);
    moved.dispose();
    field.dispose();
    field = next;
  }
  return field;
}
