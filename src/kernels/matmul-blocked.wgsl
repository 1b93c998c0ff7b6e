// Batched matmul by register blocking: out[b] = A[b] x B[b], where A[b] is
// M x K and B[b] is K x N (logical shapes), out is [batch, M, N] row-major.
// Each invocation computes one (4 * ROW_BLOCKS) x (4 * COL_BLOCKS) output
// block held in vec4 accumulators, reading a and b straight from storage:
// no workgroup memory and no barriers. This is the fast form on CPU
// adapters such as llvmpipe, which run a workgroup's invocations as SIMD
// lanes on one thread and whose caches do the tiling.
//
// Bindings: 1 a (read; f32 or vec4<f32>, see matmul-load-*.wgsl), 2 b (read; same),
//   3 out (read_write, f32).
// Uniforms: m, n, k = logical sizes; row_tiles = ceil(M / (4 * ROW_BLOCKS)),
//   col_tiles = ceil(N / (4 * COL_BLOCKS)), tiles = batch * row_tiles *
//   col_tiles; a_rows, a_cols and b_rows, b_cols = stored matrix shapes
//   (M x K or K x M for a, K x N or N x K for b); batch_rank, batch_shape,
//   a_batch_strides, b_batch_strides = the broadcast batch (see matmul-common.wgsl).
// Constants: ROW_BLOCKS, COL_BLOCKS = 4 x 4 blocks per invocation along M
//   and N; TRANSPOSE_A, TRANSPOSE_B = operands stored transposed;
//   LOADS = matmul-load-vec4.wgsl or matmul-load-scalar.wgsl; COMMON =
//   matmul-common.wgsl.
// Workgroup: WORKGROUP_SIZE x 1 x 1, one output block per invocation,
//   consecutive invocations on consecutive column blocks.
// Grid: ceil(tiles / WORKGROUP_SIZE) workgroups, folded past 65,535.

const ROW_BLOCKS: u32 = {{ROW_BLOCKS}}u;
const COL_BLOCKS: u32 = {{COL_BLOCKS}}u;
const TRANSPOSE_A: bool = {{TRANSPOSE_A}};
const TRANSPOSE_B: bool = {{TRANSPOSE_B}};

{{LOADS}}

{{COMMON}}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let tile = global_index(wid, nwg, lid);
  if (tile >= params.tiles) {
    return;
  }
  let col_tile = tile % params.col_tiles;
  let row_tile = (tile / params.col_tiles) % params.row_tiles;
  let batch = tile / (params.col_tiles * params.row_tiles);
  let m0 = row_tile * ROW_BLOCKS * 4u;
  let n0 = col_tile * COL_BLOCKS * 4u;
  let offsets = batch_offsets(batch);

  // acc[rb * COL_BLOCKS + cb][r] holds row m0 + 4 * rb + r, columns
  // n0 + 4 * cb .. n0 + 4 * cb + 3. The constant-bound loops below unroll,
  // so every index is a constant and the accumulators stay in registers.
  var acc: array<array<vec4<f32>, 4>, ROW_BLOCKS * COL_BLOCKS>;
  var bb: array<mat4x4<f32>, COL_BLOCKS>;
  for (var k = 0u; k < params.k; k += 4u) {
    for (var cb = 0u; cb < COL_BLOCKS; cb++) {
      bb[cb] = b_block(offsets.y, k, n0 + 4u * cb);
    }
    for (var rb = 0u; rb < ROW_BLOCKS; rb++) {
      let ab = a_block(offsets.x, m0 + 4u * rb, k);
      for (var cb = 0u; cb < COL_BLOCKS; cb++) {
        multiply_add(ab, bb[cb], &acc[rb * COL_BLOCKS + cb]);
      }
    }
  }

  store_block(batch * params.m * params.n, m0, n0, &acc);
}
