// Launchers of the matmul kernels and the description of their variants.
//
// Three forms come from the same loaders and block arithmetic
// (matmul-load-*.wgsl, matmul-common.wgsl):
// - "blocked": each invocation computes a register block straight from
//   storage (matmul-blocked.wgsl);
// - "subgroup": the same blocks, but each A value that every lane needs is
//   loaded by one lane in 8 and handed to the others by subgroupBroadcast
//   (matmul-subgroup.wgsl). It is the fast form on llvmpipe and needs the
//   subgroups feature, with subgroups of at least 8 invocations;
// - "tiled": workgroups stage tiles in workgroup memory between barriers
//   (matmul-tiled.wgsl), fast on GPUs.
// Each form reads the operands either as vec4s (when the stored rows are
// multiples of 4 elements) or element by element. Every variant adds the
// products of one output in increasing k with the WGSL fma builtin. A
// driver compiles every such fma the same way (llvmpipe as a multiply and
// an add, two roundings), so all variants give the same bits, which the
// tests check. tuning.ts picks the fastest per adapter and shape class.

import { deviceInfo } from '../device.js';
import { empty, formatShape, type Tensor } from '../tensor.js';
import { launch, type KernelSpec, type UniformType } from './launch.js';
import { WGSL_SOURCES } from './wgsl.generated.js';

/** A matmul kernel variant: the form, its block shape and vector width. */
export type MatmulVariant =
  | {
      /** 'subgroup' needs rowBlocks to be a multiple of 8. */
      form: 'blocked' | 'subgroup';
      /** Read the operands as vec4s; needs aligned rows (see vec4Allowed). */
      vec4: boolean;
      /** 4 x 4 blocks per invocation along M and along N. */
      rowBlocks: number;
      colBlocks: number;
      workgroupSize: number;
    }
  | {
      form: 'tiled';
      vec4: boolean;
      rowBlocks: number;
      colBlocks: number;
      /** Invocations of a workgroup along N and along M. */
      tileCols: number;
      tileRows: number;
    };

/**
 * One batched product as the kernels see it: logical sizes, the stored
 * shapes of the operand matrices and the broadcast batch.
 */
export interface MatmulProblem {
  m: number;
  n: number;
  k: number;
  /** a is stored [..., K, M] and read transposed. */
  transposeA: boolean;
  /** b is stored [..., N, K] and read transposed. */
  transposeB: boolean;
  /** Batch shape of the output; [] for a single product. */
  batchShape: readonly number[];
  /** Element stride of a and b per batch axis, 0 where broadcast. */
  aBatchStrides: readonly number[];
  bBatchStrides: readonly number[];
}

/** Largest batch rank the kernels address (two vec4<u32> per array). */
export const MAX_BATCH_RANK = 8;

/** Short stable name of a variant, used in logs, cache keys and tests. */
export function variantName(variant: MatmulVariant): string {
  const width = variant.vec4 ? 'vec4' : 'scalar';
  const block = `${4 * variant.rowBlocks}x${4 * variant.colBlocks}`;
  if (variant.form !== 'tiled') {
    return `${variant.form}-${block}-${width}-wg${variant.workgroupSize}`;
  }
  const tile = `${4 * variant.rowBlocks * variant.tileRows}x${4 * variant.colBlocks * variant.tileCols}`;
  return `tiled-${tile}-${block}-${width}`;
}

/** Stored (rows, cols) of the operand matrices of a problem. */
export function storedShapes(problem: MatmulProblem): {
  aRows: number;
  aCols: number;
  bRows: number;
  bCols: number;
} {
  const { m, n, k } = problem;
  const [aRows, aCols] = problem.transposeA ? [k, m] : [m, k];
  const [bRows, bCols] = problem.transposeB ? [n, k] : [k, n];
  return { aRows, aCols, bRows, bCols };
}

/**
 * Returns true when the operands can be read as aligned vec4s. That needs
 * stored rows of a multiple of 4 elements, which makes the batch strides
 * multiples of 4 too, and K a multiple of 4, the step of the blocked loop.
 */
export function vec4Allowed(problem: MatmulProblem): boolean {
  const { aCols, bCols } = storedShapes(problem);
  return aCols % 4 === 0 && bCols % 4 === 0 && problem.k % 4 === 0;
}

const UNIFORMS: readonly (readonly [string, UniformType])[] = [
  ['m', 'u32'],
  ['n', 'u32'],
  ['k', 'u32'],
  ['row_tiles', 'u32'],
  ['col_tiles', 'u32'],
  ['tiles', 'u32'],
  ['col_groups', 'u32'],
  ['a_rows', 'u32'],
  ['a_cols', 'u32'],
  ['b_rows', 'u32'],
  ['b_cols', 'u32'],
  ['batch_rank', 'u32'],
  ['batch_shape', 'vec4u*2'],
  ['a_batch_strides', 'vec4u*2'],
  ['b_batch_strides', 'vec4u*2'],
];

const specs = new Map<string, KernelSpec>();

function partial(name: string): string {
  const text = WGSL_SOURCES[name];
  if (text === undefined) {
    throw new Error(
      `matmul: no kernel source src/kernels/${name}.wgsl was embedded. ` +
        'Run `npm run kernels` after adding a .wgsl file.',
    );
  }
  return text;
}

/** Returns the kernel spec of a variant for one pair of transpose flags. */
export function matmulSpec(
  variant: MatmulVariant,
  transposeA: boolean,
  transposeB: boolean,
): KernelSpec {
  const key = `${variantName(variant)}|${transposeA}|${transposeB}`;
  let spec = specs.get(key);
  if (spec) return spec;
  const element = variant.vec4 ? 'vec4<f32>' : 'f32';
  const constants: Record<string, string | number> = {
    ROW_BLOCKS: variant.rowBlocks,
    COL_BLOCKS: variant.colBlocks,
    TRANSPOSE_A: String(transposeA),
    TRANSPOSE_B: String(transposeB),
    LOADS: partial(variant.vec4 ? 'matmul-load-vec4' : 'matmul-load-scalar'),
    COMMON: partial('matmul-common'),
  };
  if (variant.form === 'subgroup') {
    constants.SHARED_LANES = SHARED_LANES;
    constants.SHARED_BLOCKS = sharedBlocks(variant);
  }
  let workgroupSize: number;
  if (variant.form !== 'tiled') {
    workgroupSize = variant.workgroupSize;
  } else {
    constants.TILE_COLS = variant.tileCols;
    constants.TILE_ROWS = variant.tileRows;
    workgroupSize = variant.tileCols * variant.tileRows;
  }
  spec = {
    name: `matmul-${variant.form}`,
    uniforms: UNIFORMS,
    bindings: [
      { name: 'a', access: 'read', type: element },
      { name: 'b', access: 'read', type: element },
      { name: 'out', access: 'read_write' },
    ],
    constants,
    workgroupSize,
  };
  specs.set(key, spec);
  return spec;
}

/**
 * Writes out the multiply-adds of one k step of matmul-subgroup.wgsl, row
 * block by row block, because subgroupBroadcast takes a constant lane.
 */
function sharedBlocks(variant: MatmulVariant): string {
  const lines: string[] = [];
  for (let rb = 0; rb < variant.rowBlocks; rb++) {
    const laneBlock = `loaded[${Math.floor(rb / SHARED_LANES)}]`;
    const lane = `${rb % SHARED_LANES}u`;
    const columns = [0, 1, 2, 3].map((c) => `subgroupBroadcast(${laneBlock}[${c}], ${lane})`);
    lines.push(`    {`);
    lines.push(`      let ab = mat4x4<f32>(${columns.join(', ')});`);
    for (let cb = 0; cb < variant.colBlocks; cb++) {
      lines.push(`      multiply_add(ab, bb[${cb}], &acc[${rb * variant.colBlocks + cb}]);`);
    }
    lines.push(`    }`);
  }
  return lines.join('\n');
}

/** Returns the output rows and columns one invocation (blocked) or workgroup (tiled) covers. */
export function tileShape(variant: MatmulVariant): [number, number] {
  if (variant.form !== 'tiled') {
    return [4 * variant.rowBlocks, 4 * variant.colBlocks];
  }
  return [
    4 * variant.rowBlocks * variant.tileRows,
    4 * variant.colBlocks * variant.tileCols,
  ];
}

/** Subgroup invocations that share one load of A in the 'subgroup' form. */
export const SHARED_LANES = 8;

/**
 * Returns why this device cannot run `variant`, or null when it can. Only
 * the 'subgroup' form has needs: the subgroups feature, subgroups of at
 * least SHARED_LANES invocations, and rowBlocks a multiple of SHARED_LANES.
 */
export function variantUnsupported(variant: MatmulVariant): string | null {
  if (variant.form !== 'subgroup') return null;
  if (variant.rowBlocks % SHARED_LANES !== 0) {
    return `rowBlocks ${variant.rowBlocks} is not a multiple of ${SHARED_LANES}`;
  }
  const info = deviceInfo();
  if (!info.features.has('subgroups')) return 'the device lacks the subgroups feature';
  if (info.subgroupMinSize < SHARED_LANES) {
    return `the adapter's subgroups may have ${info.subgroupMinSize} invocations, fewer than ${SHARED_LANES}`;
  }
  return null;
}

/**
 * @internal Records one batched product with `variant` and returns the
 * output [...batchShape, M, N]; no autograd. `a` and `b` hold the stored
 * operands, contiguous, with the batch strides of `problem`.
 */
export function matmulKernel(
  op: string,
  variant: MatmulVariant,
  problem: MatmulProblem,
  a: Tensor,
  b: Tensor,
): Tensor {
  const { m, n, k, batchShape } = problem;

  if (variant.vec4 && !vec4Allowed(problem)) {
    throw new Error(
      `${op}: variant ${variantName(variant)} reads vec4s, but the stored ` +
        `operands of a ${formatShape(a.shape)} x ${formatShape(b.shape)} ` +
        'product have rows that are not multiples of 4 elements',
    );
  }
  const unsupported = variantUnsupported(variant);
  if (unsupported !== null) {
    throw new Error(`${op}: variant ${variantName(variant)} cannot run here: ${unsupported}`);
  }
  if (batchShape.length > MAX_BATCH_RANK) {
    throw new RangeError(
      `${op}: batch shape ${formatShape(batchShape)} has more than ` +
        `${MAX_BATCH_RANK} dimensions`,
    );
  }

  const out = empty([...batchShape, m, n], op);
  const batch = batchShape.reduce((p, d) => p * d, 1);
  const [tileRows, tileCols] = tileShape(variant);
  const rowTiles = Math.ceil(m / tileRows);
  const colTiles = Math.ceil(n / tileCols);
  const tiles = batch * rowTiles * colTiles;
  const spec = matmulSpec(variant, problem.transposeA, problem.transposeB);
  // A subgroup workgroup stays on one row of blocks (see matmul-subgroup.wgsl).
  const colGroups = variant.form === 'tiled' ? 0 : Math.ceil(colTiles / variant.workgroupSize);
  const workgroups =
    variant.form === 'blocked'
      ? Math.ceil(tiles / variant.workgroupSize)
      : variant.form === 'subgroup'
        ? colGroups * batch * rowTiles
        : tiles;
  launch(spec, {
    label: op,
    uniforms: {
      m,
      n,
      k,
      row_tiles: rowTiles,
      col_tiles: colTiles,
      tiles,
      col_groups: colGroups,
      ...storedUniforms(problem),
      batch_rank: batchShape.length,
      batch_shape: batchShape,
      a_batch_strides: problem.aBatchStrides,
      b_batch_strides: problem.bBatchStrides,
    },
    buffers: [
      { buffer: a.buffer(op), bytes: a.bytes },
      { buffer: b.buffer(op), bytes: b.bytes },
      { buffer: out.buffer(op), bytes: out.bytes },
    ],
    workgroups,
  });
  return out;
}

function storedUniforms(problem: MatmulProblem): Record<string, number> {
  const { aRows, aCols, bRows, bCols } = storedShapes(problem);
  return { a_rows: aRows, a_cols: aCols, b_rows: bRows, b_cols: bCols };
}
