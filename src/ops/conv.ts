// conv3d and convTranspose3d with PyTorch's semantics, and their backward.
//
// Layout: x [N, C, D, H, W]; conv3d weight [Cout, Cin, kD, kH, kW];
// convTranspose3d weight [Cin, Cout, kD, kH, kW] (PyTorch's layouts).
// Groups other than 1 are not supported.

import { noGrad, record } from '../autograd/node.js';
import {
  convTransposed,
  convWeightGradPartials,
  packWeight,
  TRANSPOSED_QUADS,
  type ConvGeometry,
  type Triple,
} from '../kernels/conv3d.js';
import { convRows, rowsVariantFor, UNIFORM_WEIGHT_VEC4S } from '../kernels/conv3d_rows.js';
import {
  convTransposedRows,
  TRANSPOSE_ROWS_MAX_STRIDE,
} from '../kernels/conv3d_transpose_rows.js';
import {
  convWeightGradRows,
  weightGradRowsAllowed,
} from '../kernels/conv3d_weight_grad_rows.js';
import { formatShape, type Tensor } from '../tensor.js';
import { reduceKernel } from './reduce.js';
import { concat, narrow } from './layout.js';

export type Size3 = number | readonly [number, number, number];

export interface Conv3dOptions {
  stride?: Size3;
  padding?: Size3;
  dilation?: Size3;
}

export interface ConvTranspose3dOptions extends Conv3dOptions {
  outputPadding?: Size3;
}

function triple(op: string, name: string, value: Size3 | undefined, fallback: number, min: number): Triple {
  const result: Triple =
    value === undefined
      ? [fallback, fallback, fallback]
      : typeof value === 'number'
        ? [value, value, value]
        : [value[0], value[1], value[2]];
  if (
    (typeof value === 'object' && value.length !== 3) ||
    result.some((v) => !Number.isInteger(v) || v < min)
  ) {
    throw new RangeError(
      `${op}: ${name} must be an integer >= ${min} or three of them, got ${JSON.stringify(value)}`,
    );
  }
  return result;
}

function checkRank5(op: string, name: string, t: Tensor): void {
  if (t.rank !== 5) {
    throw new RangeError(
      `${op}: ${name} must have 5 dimensions, got shape ${formatShape(t.shape)}`,
    );
  }
}

function checkBias(op: string, bias: Tensor | null, channels: number): void {
  if (bias && (bias.rank !== 1 || bias.shape[0] !== channels)) {
    throw new RangeError(
      `${op}: bias ${formatShape(bias.shape)} must have shape [${channels}]`,
    );
  }
}

function biasGrad(g: Tensor): Tensor {
  return reduceKernel('conv bias gradient', 'sum', g, [0, 2, 3, 4], false);
}

/**
 * Weight gradient of the convolution `geometry` from x to g: partial sums
 * over chunks of rows, then their sum over the chunk axis.
 */
function weightGrad(op: string, x: Tensor, g: Tensor, geometry: ConvGeometry): Tensor {
  const partial = weightGradRowsAllowed(x, g)
    ? convWeightGradRows(op, x, g, geometry)
    : convWeightGradPartials(op, x, g, geometry);
  const summed = reduceKernel(`${op} weight gradient`, 'sum', partial, [0], false);
  partial.dispose();
  return summed;
}

/**
 * Direct convolution of `x` with `weight`, whose channel axes `read` and
 * `write` locate (see packWeight), reversed along every axis when `flip`.
 *
 * A weight too large for the uniform array of conv3d_rows is split into
 * groups of output channels that fit, run one after the other and joined.
 * On llvmpipe a uniform weight is faster than one read from storage (50 to
 * 16 channels at 32^3: 40 ms against 63, other work sharing the machine).
 * Each output sums the same products in the same order as in one
 * convolution, so the result is bitwise the same.
 */
function directConv(
  label: string,
  geometry: ConvGeometry,
  x: Tensor,
  weight: Tensor,
  read: { count: number; stride: number },
  write: { count: number; stride: number },
  bias: Tensor | null,
  flip = false,
): Tensor {
  const { kernelSize } = geometry;
  const taps = kernelSize[0] * kernelSize[1] * kernelSize[2];
  const chunks = uniformWeightChunks(read.count * taps, write.count);
  if (chunks === 1) return directConvRows(label, geometry, x, weight, read, write, bias, flip);
  const perChunk = 4 * Math.ceil(Math.ceil(write.count / 4) / chunks);
  return noGrad(() => {
    const outputs: Tensor[] = [];
    for (let first = 0; first < write.count; first += perChunk) {
      const count = Math.min(perChunk, write.count - first);
      const part = { ...geometry, outChannels: count };
      const partBias = bias ? narrow(bias, 0, first, count) : null;
      outputs.push(directConvRows(label, part, x, weight, read, { ...write, first, count }, partBias, flip));
      partBias?.dispose();
    }
    const out = concat(outputs, 1);
    outputs.forEach((t) => t.dispose());
    return out;
  });
}

/**
 * Returns how many groups of output channels a direct convolution is
 * split into so that each group's packed weight fits the uniform array
 * of conv3d_rows. It is 1 when the whole weight fits, and also when not
 * even one quad of output channels fits.
 */
function uniformWeightChunks(vec4sPerQuad: number, outChannels: number): number {
  const quadsPerChunk = Math.floor(UNIFORM_WEIGHT_VEC4S / vec4sPerQuad);
  const quads = Math.ceil(outChannels / 4);
  if (quadsPerChunk < 1 || quads <= quadsPerChunk) return 1;
  return Math.ceil(quads / quadsPerChunk);
}

/** Packs the written channels `write` of `weight` and runs conv3d_rows. */
function directConvRows(
  label: string,
  geometry: ConvGeometry,
  x: Tensor,
  weight: Tensor,
  read: { count: number; stride: number },
  write: { count: number; stride: number; first?: number },
  bias: Tensor | null,
  flip: boolean,
): Tensor {
  const { kernelSize } = geometry;
  const taps = kernelSize[0] * kernelSize[1] * kernelSize[2];
  const variant = rowsVariantFor(geometry);
  const packed = packWeight(label, weight, taps, read, write, variant.quads, flip);
  const out = convRows(label, geometry, x, packed, bias, variant);
  packed.dispose();
  return out;
}

/**
 * Transposed convolution of `x` (the gather form of a convolution's input
 * gradient). `geometry` is already seen from the transposed side: its input
 * is x and its output the result; stride, padding and dilation are those of
 * the convolution being transposed. `read` and `write` locate the channel
 * axes of `weight` (see packWeight). With stride 1 and padding <= dilation
 * * (k - 1) the result equals the direct convolution with the reversed
 * kernel and padding dilation * (k - 1) - padding, which runs on the faster
 * direct kernel. Other strides along W up to TRANSPOSE_ROWS_MAX_STRIDE run
 * on the row-segment gather kernel, wider ones on conv3d_transpose.
 */
function transposedConv(
  label: string,
  geometry: ConvGeometry,
  x: Tensor,
  weight: Tensor,
  read: { count: number; stride: number },
  write: { count: number; stride: number },
  bias: Tensor | null,
): Tensor {
  const { kernelSize, dilation, padding } = geometry;
  const taps = kernelSize[0] * kernelSize[1] * kernelSize[2];
  const flippedPadding = kernelSize.map((k, i) => dilation[i] * (k - 1) - padding[i]) as Triple;
  if (geometry.stride.every((s) => s === 1) && flippedPadding.every((p) => p >= 0)) {
    const flipped = { ...geometry, padding: flippedPadding };
    return directConv(label, flipped, x, weight, read, write, bias, true);
  }
  if (geometry.stride[2] <= TRANSPOSE_ROWS_MAX_STRIDE) {
    const packed = packWeight(label, weight, taps, read, write, 1);
    const out = convTransposedRows(label, geometry, x, packed, bias);
    packed.dispose();
    return out;
  }
  const packed = packWeight(label, weight, taps, read, write, TRANSPOSED_QUADS);
  const out = convTransposed(label, geometry, x, packed, bias);
  packed.dispose();
  return out;
}

interface CheckedConv {
  batch: number;
  inChannels: number;
  outChannels: number;
  inSize: Triple;
  kernelSize: Triple;
  stride: Triple;
  padding: Triple;
  dilation: Triple;
}

/**
 * Checks the operands of conv3d or convTranspose3d, whose weights hold the
 * input channels on axis `inputAxis` (1 for conv3d, 0 for the transpose)
 * and the output channels on the other of the first two axes.
 */
function checkConv(
  op: string,
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  options: Conv3dOptions,
  inputAxis: 0 | 1,
): CheckedConv {
  checkRank5(op, 'input', x);
  checkRank5(op, 'weight', weight);
  const [batch, inChannels, d, h, w] = x.shape;
  const weightInChannels = weight.shape[inputAxis];
  const outChannels = weight.shape[1 - inputAxis];
  if (weightInChannels !== inChannels) {
    throw new RangeError(
      `${op}: input ${formatShape(x.shape)} has ${inChannels} channels but weight ` +
        `${formatShape(weight.shape)} expects ${weightInChannels}`,
    );
  }
  checkBias(op, bias, outChannels);
  return {
    batch,
    inChannels,
    outChannels,
    inSize: [d, h, w],
    kernelSize: [weight.shape[2], weight.shape[3], weight.shape[4]],
    stride: triple(op, 'stride', options.stride, 1, 1),
    padding: triple(op, 'padding', options.padding, 0, 0),
    dilation: triple(op, 'dilation', options.dilation, 1, 1),
  };
}

/**
 * 3D convolution (cross-correlation) like torch.nn.functional.conv3d with
 * zero padding and groups = 1: x [N, Cin, D, H, W], weight
 * [Cout, Cin, kD, kH, kW], optional bias [Cout]. stride, padding and
 * dilation take one integer or one per axis (D, H, W).
 */
export function conv3d(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null = null,
  options: Conv3dOptions = {},
): Tensor {
  const op = 'conv3d';
  const checked = checkConv(op, x, weight, bias, options, 1);
  const { batch: n, inChannels: cin, outChannels: cout } = checked;
  const { inSize, kernelSize, stride, padding, dilation } = checked;
  const [kd, kh, kw] = kernelSize;
  const outSize = inSize.map((size, i) =>
    Math.floor((size + 2 * padding[i] - dilation[i] * (kernelSize[i] - 1) - 1) / stride[i]) + 1,
  ) as Triple;
  if (outSize.some((s) => s < 1)) {
    throw new RangeError(
      `${op}: kernel ${formatShape(kernelSize)} (dilation ${formatShape(dilation)}) is ` +
        `larger than the padded input ${formatShape(inSize.map((s, i) => s + 2 * padding[i]))} ` +
        `of input ${formatShape(x.shape)}`,
    );
  }
  const taps = kd * kh * kw;
  const geometry: ConvGeometry = {
    batch: n,
    inChannels: cin,
    inSize,
    outChannels: cout,
    outSize,
    kernelSize,
    stride,
    padding,
    dilation,
  };

  // Forward: pack the weight by input channel, then the direct kernel.
  const read = { count: cin, stride: taps };
  const write = { count: cout, stride: cin * taps };
  const out = directConv(op, geometry, x, weight, read, write, bias);

  const inputs = bias ? [x, weight, bias] : [x, weight];
  return record(op, out, inputs, [x, weight], (g, [savedX, savedWeight]) => {
    let gx: Tensor | null = null;
    if (x.requiresGrad) {
      // Reads g's Cout channels and writes Cin.
      gx = transposedConv(
        `${op} input gradient`,
        { ...geometry, inChannels: cout, inSize: outSize, outChannels: cin, outSize: inSize },
        g,
        savedWeight,
        { count: cout, stride: cin * taps },
        { count: cin, stride: taps },
        null,
      );
    }
    const gw = weight.requiresGrad ? weightGrad(op, savedX, g, geometry) : null;
    const gb = bias?.requiresGrad ? biasGrad(g) : null;
    return bias ? [gx, gw, gb] : [gx, gw];
  });
}

/**
 * Transposed 3D convolution like torch.nn.functional.conv_transpose3d with
 * groups = 1: x [N, Cin, D, H, W], weight [Cin, Cout, kD, kH, kW], optional
 * bias [Cout]. Output size per axis: (in - 1) * stride - 2 * padding +
 * dilation * (k - 1) + outputPadding + 1.
 */
export function convTranspose3d(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null = null,
  options: ConvTranspose3dOptions = {},
): Tensor {
  const op = 'convTranspose3d';
  const checked = checkConv(op, x, weight, bias, options, 0);
  const { batch: n, inChannels: cin, outChannels: cout } = checked;
  const { inSize, kernelSize, stride, padding, dilation } = checked;
  const [kd, kh, kw] = kernelSize;
  const outputPadding = triple(op, 'outputPadding', options.outputPadding, 0, 0);
  outputPadding.forEach((p, i) => {
    if (p >= stride[i] && p >= dilation[i]) {
      throw new RangeError(
        `${op}: outputPadding ${formatShape(outputPadding)} must be smaller than ` +
          `stride ${formatShape(stride)} or dilation ${formatShape(dilation)}`,
      );
    }
  });
  const outSize = inSize.map(
    (size, i) =>
      (size - 1) * stride[i] - 2 * padding[i] + dilation[i] * (kernelSize[i] - 1) + outputPadding[i] + 1,
  ) as Triple;
  if (outSize.some((s) => s < 1)) {
    throw new RangeError(
      `${op}: input ${formatShape(x.shape)} with padding ${formatShape(padding)} ` +
        `gives an empty output ${formatShape(outSize)}`,
    );
  }
  const taps = kd * kh * kw;
  // The convolution whose transpose this is maps the output back to x.
  const forwardGeometry: ConvGeometry = {
    batch: n,
    inChannels: cout,
    inSize: outSize,
    outChannels: cin,
    outSize: inSize,
    kernelSize,
    stride,
    padding,
    dilation,
  };
  const out = transposedConv(
    op,
    { ...forwardGeometry, inChannels: cin, inSize, outChannels: cout, outSize },
    x,
    weight,
    { count: cin, stride: cout * taps },
    { count: cout, stride: taps },
    bias,
  );

  const inputs = bias ? [x, weight, bias] : [x, weight];
  return record(op, out, inputs, [x, weight], (g, [savedX, savedWeight]) => {
    let gx: Tensor | null = null;
    if (x.requiresGrad) {
      // The input gradient is the direct convolution of g with the weight.
      const read = { count: cout, stride: taps };
      const write = { count: cin, stride: cout * taps };
      gx = directConv(`${op} input gradient`, forwardGeometry, g, savedWeight, read, write, null);
    }
    // Weight layout [Cin, Cout, k]: the direct convolution's weight gradient
    // with g as its input and x as its output gradient.
    const gw = weight.requiresGrad ? weightGrad(op, g, savedX, forwardGeometry) : null;
    const gb = bias?.requiresGrad ? biasGrad(g) : null;
    return bias ? [gx, gw, gb] : [gx, gw];
  });
}
