// Launchers of the upsampling kernels (upsample_linear, upsample_nearest,
// upsample_grad) and the per-axis tables that carry PyTorch's coordinate
// rules to them.
//
// The source coordinate of each output position depends only on its axis,
// so it is computed here once per axis in float64 and uploaded with the
// call: the kernels read indices and weights instead of repeating the
// arithmetic per element, and forward and backward cannot disagree.

import { empty, shapeSize, tensor, type Tensor } from '../tensor.js';
import { launch, workgroupsFor, type KernelSpec } from './launch.js';
import { elementsPerInvocation } from './runs.js';

export type Triple = [number, number, number];
export type UpsampleMode = 'linear' | 'nearest';

/** Taps of one axis: per output position, two source indices and a weight. */
export interface AxisTaps {
  first: Uint32Array;
  second: Uint32Array;
  /** Weight of `second`; `first` takes 1 - weight. 0 for nearest. */
  weight: Float64Array;
}

/**
 * Source taps of every output position along one axis, with the rules of
 * torch.nn.functional.interpolate: `scale` is the factor the caller gave
 * (null when it gave the size), which sets ratio = 1 / scale, otherwise
 * ratio = in / out.
 * - nearest: first = min(floor(dst * ratio), in - 1);
 * - linear with alignCorners: src = dst * (in - 1) / (out - 1) (0 when
 *   out == 1);
 * - linear otherwise: src = max((dst + 0.5) * ratio - 0.5, 0);
 * then first = floor(src), second = first + 1 (first at the last input)
 * and weight = src - first.
 */
export function axisTaps(
  inSize: number,
  outSize: number,
  scale: number | null,
  mode: UpsampleMode,
  alignCorners: boolean,
): AxisTaps {
  const ratio = scale === null ? inSize / outSize : 1 / scale;
  const first = new Uint32Array(outSize);
  const second = new Uint32Array(outSize);
  const weight = new Float64Array(outSize);
  for (let dst = 0; dst < outSize; dst++) {
    if (mode === 'nearest') {
      first[dst] = Math.min(Math.floor(dst * ratio), inSize - 1);
      second[dst] = first[dst];
      continue;
    }
    let src: number;
    if (alignCorners) src = outSize > 1 ? (dst * (inSize - 1)) / (outSize - 1) : 0;
    else src = Math.max((dst + 0.5) * ratio - 0.5, 0);
    first[dst] = Math.floor(src);
    second[dst] = first[dst] < inSize - 1 ? first[dst] + 1 : first[dst];
    weight[dst] = src - first[dst];
  }
  return { first, second, weight };
}

/**
 * Readers of every input position along one axis: the first output
 * position whose taps include it, the count of consecutive positions from
 * there, and the weight each of them reads the input with. Taps never
 * decrease with the output position, so the readers of an input are
 * contiguous. The weights are rounded as the forward kernels round them
 * (1 - weight and weight in float32, summed when both taps are the
 * input), so the gradient is the exact transpose of the forward pass.
 */
export function axisSpans(
  taps: AxisTaps,
  inSize: number,
): { start: Uint32Array; count: Uint32Array; weights: Float32Array[] } {
  const start = new Uint32Array(inSize);
  const end = new Uint32Array(inSize);
  const seen = new Uint8Array(inSize);
  const mark = (i: number, o: number) => {
    if (!seen[i]) start[i] = o;
    seen[i] = 1;
    end[i] = o + 1;
  };
  for (let o = 0; o < taps.first.length; o++) {
    mark(taps.first[o], o);
    mark(taps.second[o], o);
  }
  const count = end.map((e, i) => (seen[i] ? e - start[i] : 0));
  const weights = Array.from(count, (n, i) => {
    const list = new Float32Array(n);
    for (let k = 0; k < n; k++) {
      const o = start[i] + k;
      const second = Math.fround(taps.weight[o]);
      const first = Math.fround(1 - second);
      let total = 0;
      if (taps.first[o] === i) total = first;
      if (taps.second[o] === i) total = Math.fround(total + second);
      list[k] = total;
    }
    return list;
  });
  return { start, count, weights };
}

/** Offsets into an uploaded table and the table itself. */
export interface UpsampleTable {
  table: Tensor;
  taps: Triple;
  spans: Triple;
}

/**
 * Uploads the tables of the three axes as one u32 tensor. The taps take 3
 * words per output position (first, second, weight bits). The spans take
 * 3 words per input position (first reader, reader count, offset of the
 * readers' weight bits), followed by those weights.
 */
export function uploadTable(
  axes: readonly AxisTaps[],
  inSize: Triple,
): UpsampleTable {
  const words: number[] = [];
  const bits = new Float32Array(1);
  const bitsWord = new Uint32Array(bits.buffer);
  const pushFloat = (value: number) => {
    bits[0] = value;
    words.push(bitsWord[0]);
  };
  const taps: number[] = [];
  for (const axis of axes) {
    taps.push(words.length);
    for (let o = 0; o < axis.first.length; o++) {
      words.push(axis.first[o], axis.second[o]);
      pushFloat(axis.weight[o]);
    }
  }
  const spans: number[] = [];
  axes.forEach((axis, a) => {
    const { start, count, weights } = axisSpans(axis, inSize[a]);
    spans.push(words.length);
    // Reserve the span entries, then append the weights after them.
    const entries = words.length;
    words.length += 3 * inSize[a];
    for (let i = 0; i < inSize[a]; i++) {
      words[entries + 3 * i] = start[i];
      words[entries + 3 * i + 1] = count[i];
      words[entries + 3 * i + 2] = words.length;
      weights[i].forEach(pushFloat);
    }
  });
  // The tensor stores raw u32 words: a Float32Array view uploads the bytes
  // unchanged, and the kernels declare the binding as u32.
  const packed = Uint32Array.from(words);
  const table = tensor(new Float32Array(packed.buffer), [packed.length]);
  return { table, taps: taps as Triple, spans: spans as Triple };
}

const UNIFORMS = [
  ['total', 'u32'],
  ['runs', 'u32'],
  ['run_length', 'u32'],
  ['depth', 'u32'],
  ['height', 'u32'],
  ['width', 'u32'],
  ['out_depth', 'u32'],
  ['out_height', 'u32'],
  ['out_width', 'u32'],
  ['taps_depth', 'u32'],
  ['taps_height', 'u32'],
  ['taps_width', 'u32'],
] as const;

const FORWARD_BINDINGS: KernelSpec['bindings'] = [
  { name: 'x', access: 'read' },
  { name: 'table', access: 'read', type: 'u32' },
  { name: 'out', access: 'read_write' },
];

const LINEAR_SPEC: KernelSpec = {
  name: 'upsample_linear',
  uniforms: UNIFORMS,
  bindings: FORWARD_BINDINGS,
};

const NEAREST_SPEC: KernelSpec = {
  name: 'upsample_nearest',
  uniforms: UNIFORMS,
  bindings: FORWARD_BINDINGS,
};

const GRAD_SPEC: KernelSpec = {
  name: 'upsample_grad',
  uniforms: [
    ['total', 'u32'],
    ['run_length', 'u32'],
    ['from_len', 'u32'],
    ['to_len', 'u32'],
    ['inner', 'u32'],
    ['spans', 'u32'],
  ],
  bindings: [
    { name: 'upstream', access: 'read' },
    { name: 'table', access: 'read', type: 'u32' },
    { name: 'grad', access: 'read_write' },
  ],
};

/**
 * Returns the uniforms of a forward kernel that walks its output `side`
 * [N, C, D, H, W] in runs along W.
 */
function uniforms(
  side: readonly number[],
  inSize: Triple,
  outSize: Triple,
  table: UpsampleTable,
) {
  const runLength = elementsPerInvocation();
  const runs = Math.ceil(side[4] / runLength);
  return {
    total: side[0] * side[1] * side[2] * side[3] * runs,
    runs,
    run_length: runLength,
    depth: inSize[0],
    height: inSize[1],
    width: inSize[2],
    out_depth: outSize[0],
    out_height: outSize[1],
    out_width: outSize[2],
    taps_depth: table.taps[0],
    taps_height: table.taps[1],
    taps_width: table.taps[2],
  };
}

/** Upsamples x [N, C, D, H, W] to [N, C, ...outSize] with the table's taps. */
export function upsampleForward(
  op: string,
  x: Tensor,
  mode: UpsampleMode,
  outSize: Triple,
  table: UpsampleTable,
): Tensor {
  const [n, c, ...inSize] = x.shape;
  const out = empty([n, c, ...outSize], op);
  const spec = mode === 'linear' ? LINEAR_SPEC : NEAREST_SPEC;
  const values = uniforms(out.shape, inSize as Triple, outSize, table);
  launch(spec, {
    label: op,
    uniforms: values,
    buffers: [
      { buffer: x.buffer(op), bytes: x.bytes },
      { buffer: table.table.buffer(op), bytes: table.table.bytes },
      { buffer: out.buffer(op), bytes: out.bytes },
    ],
    workgroups: workgroupsFor(spec, values.total),
  });
  return out;
}

/**
 * Computes the input gradient of upsampleForward in three passes of
 * upsample_grad, each gathering the gradient along one axis (W, H, then D)
 * onto that axis's input positions. The two intermediate tensors are
 * freed before return.
 */
export function upsampleBackward(
  op: string,
  upstream: Tensor,
  inShape: readonly number[],
  table: UpsampleTable,
): Tensor {
  const shape = [...upstream.shape];
  let current = upstream;
  for (let axis = 2; axis >= 0; axis--) {
    const fromLength = shape[axis + 2];
    shape[axis + 2] = inShape[axis + 2];
    const grad = empty(shape, op);
    const total = shapeSize(shape);
    const runLength = elementsPerInvocation();
    launch(GRAD_SPEC, {
      label: `${op} gradient`,
      uniforms: {
        total,
        run_length: runLength,
        from_len: fromLength,
        to_len: shape[axis + 2],
        inner: shapeSize(shape.slice(axis + 3)),
        spans: table.spans[axis],
      },
      buffers: [
        { buffer: current.buffer(op), bytes: current.bytes },
        { buffer: table.table.buffer(op), bytes: table.table.bytes },
        { buffer: grad.buffer(op), bytes: grad.bytes },
      ],
      workgroups: workgroupsFor(GRAD_SPEC, Math.ceil(total / runLength)),
    });
    if (current !== upstream) current.dispose();
    current = grad;
  }
  return current;
}
