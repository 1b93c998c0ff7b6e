// Launcher of conv3d_transpose_rows, the transposed convolution (gather
// form) that loads each input row segment once for all taps along W (see
// the .wgsl file).

import { empty, type Tensor } from '../tensor.js';
import { GEOMETRY_UNIFORMS, geometryUniforms, type ConvGeometry } from './conv3d.js';
import {
  COMPONENTS,
  loadColumnFn,
  loadQuadFn,
  storeCode,
  weightBinding,
  weightBuffer,
} from './conv3d_rows.js';
import { kernelOptions, launch, type BindingSpec, type KernelSpec } from './launch.js';

/** Compile-time W geometry of a conv3d_transpose_rows pipeline. */
interface TransposeForm {
  /** Bind x and out as vec4 arrays (IW and OW multiples of 4). */
  vec4: boolean;
  kernelW: number;
  strideW: number;
  dilationW: number;
  padW: number;
}

/** The largest stride along W the kernel takes; wider strides use conv3d_transpose. */
export const TRANSPOSE_ROWS_MAX_STRIDE = 4;

/** vec4s of columns per invocation: BLOCK = 4 * stride_w columns, at least 8. */
function vectorsFor(strideW: number): number {
  return Math.max(2, strideW);
}

/** Lists the taps kw of column j of a block and their input offsets from ow0 / stride_w. */
function columnTaps(form: TransposeForm, j: number): { kw: number; offset: number }[] {
  const taps: { kw: number; offset: number }[] = [];
  for (let kw = 0; kw < form.kernelW; kw++) {
    const reach = j + form.padW - kw * form.dilationW;
    if (((reach % form.strideW) + form.strideW) % form.strideW === 0) {
      taps.push({ kw, offset: reach / form.strideW });
    }
  }
  return taps;
}

/** Loads of the segment, and the WGSL expression of each offset's value. */
function segmentLoads(
  form: TransposeForm,
  offsets: readonly number[],
): { loads: string[]; value: (offset: number) => string } {
  const lowest = Math.min(...offsets);
  if (!form.vec4) {
    return {
      loads: [...new Set(offsets)].map(
        (r) => `let s${r - lowest} = load_column(row, iw_first + (${r}));`,
      ),
      value: (r) => `s${r - lowest}`,
    };
  }
  // iw_first is a multiple of 4, so offset r lies in vec4 floor(r / 4).
  const base = Math.floor(lowest / 4);
  const quads = [...new Set(offsets.map((r) => Math.floor(r / 4) - base))];
  return {
    loads: [
      'let row4 = row / 4u;',
      `let quad_first = iw_first / 4 + (${base});`,
      ...quads.map((m) => `let q${m} = load_quad(row4, quad_first + ${m});`),
    ],
    value: (r) => `q${Math.floor(r / 4) - base}.${COMPONENTS[((r % 4) + 4) % 4]}`,
  };
}

/**
 * Generates the FMAs of one input row: for each vec4 of columns and each
 * term t, the t-th tap of every column, a vec4 of inputs times a vec4 of
 * weights (0 where a column has fewer taps) for each of the 4 channels.
 */
function termCode(
  form: TransposeForm,
  columns: readonly { kw: number; offset: number }[][],
  value: (offset: number) => string,
): string[] {
  const code = [...Array(form.kernelW).keys()].map(
    (kw) => `let w${kw} = weight[(tap_row + ${kw}u) * params.out_quads + quad0];`,
  );
  const terms = Math.max(...columns.map((taps) => taps.length));
  for (let v = 0; v < columns.length / 4; v++) {
    for (let t = 0; t < terms; t++) {
      const lanes = [0, 1, 2, 3].map((i) => columns[4 * v + i][t]);
      if (lanes.every((tap) => tap === undefined)) continue;
      const inputs = lanes.map((tap) => (tap ? value(tap.offset) : '0.0'));
      code.push('{', `  let xv = vec4<f32>(${inputs.join(', ')});`);
      for (let c = 0; c < 4; c++) {
        const weights = lanes.map((tap) => (tap ? `w${tap.kw}.${COMPONENTS[c]}` : '0.0'));
        const weightVector = weights.every((w) => w === weights[0])
          ? `vec4<f32>(${weights[0]})`
          : `vec4<f32>(${weights.join(', ')})`;
        code.push(`  acc${c}_${v} = fma(${weightVector}, xv, acc${c}_${v});`);
      }
      code.push('}');
    }
  }
  return code;
}

function transposeConstants(form: TransposeForm): Record<string, string> {
  const vectors = [...Array(vectorsFor(form.strideW)).keys()];
  const block = 4 * vectors.length;
  const columns = [...Array(block).keys()].map((j) => columnTaps(form, j));
  const segment = segmentLoads(form, columns.flat().map((tap) => tap.offset));
  return {
    BLOCK: String(block),
    KERNEL_W: String(form.kernelW),
    STRIDE_W: String(form.strideW),
    LOAD_FN: form.vec4 ? loadQuadFn('params.in_width') : loadColumnFn('params.in_width'),
    ACC_DECL: [0, 1, 2, 3]
      .flatMap((c) => vectors.map((v) => `var acc${c}_${v} = vec4<f32>(0.0);`))
      .join('\n  '),
    ROW_LOADS: segment.loads.join('\n        '),
    ROW_TAPS: termCode(form, columns, segment.value).join('\n        '),
    ACC_STORE: [0, 1, 2, 3].map((c) => storeCode(form, c, vectors)).join('\n  '),
  };
}

const specs = new Map<string, KernelSpec>();

function transposeSpec(form: TransposeForm, weight: BindingSpec): KernelSpec {
  const key = JSON.stringify([form, weight]);
  let spec = specs.get(key);
  if (!spec) {
    const element = form.vec4 ? 'vec4<f32>' : 'f32';
    spec = {
      name: 'conv3d_transpose_rows',
      uniforms: GEOMETRY_UNIFORMS,
      bindings: [
        { name: 'x', access: 'read', type: element },
        weight,
        { name: 'bias', access: 'read' },
        { name: 'out', access: 'read_write', type: element },
      ],
      constants: transposeConstants(form),
    };
    specs.set(key, spec);
  }
  return spec;
}

/**
 * Transposed convolution (gather form) of `x` with a weight packed by
 * packWeight with one quad per invocation. `geometry.inSize` is the size
 * of x and `geometry.outSize` that of the result. The stride along W must
 * be at most TRANSPOSE_ROWS_MAX_STRIDE.
 */
export function convTransposedRows(
  op: string,
  geometry: ConvGeometry,
  x: Tensor,
  packed: Tensor,
  bias: Tensor | null,
  vec4 = geometry.inSize[2] % 4 === 0 && geometry.outSize[2] % 4 === 0,
): Tensor {
  const form: TransposeForm = {
    vec4,
    kernelW: geometry.kernelSize[2],
    strideW: geometry.stride[2],
    dilationW: geometry.dilation[2],
    padW: geometry.padding[2],
  };
  if (form.strideW > TRANSPOSE_ROWS_MAX_STRIDE) {
    throw new RangeError(
      `${op}: the transposed convolution by rows takes a stride along W of at ` +
        `most ${TRANSPOSE_ROWS_MAX_STRIDE}, got ${form.strideW}`,
    );
  }

  const spec = transposeSpec(form, weightBinding(packed));
  const blocksW = Math.ceil(geometry.outSize[2] / (4 * vectorsFor(form.strideW)));
  const [od, oh, ow] = geometry.outSize;
  const out = empty([geometry.batch, geometry.outChannels, od, oh, ow], op);
  const workgroupSize = spec.workgroupSize ?? kernelOptions.workgroupSize;
  const uniforms = geometryUniforms(geometry, blocksW, bias !== null, workgroupSize, 1);
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
    workgroups: geometry.batch * uniforms.out_quads * uniforms.groups_per_plane,
  });
  weight.release();
  return out;
}
