// Batched matmul by register blocking with A's blocks shared through the
// subgroup: out[b] = A[b] x B[b], same operands, uniforms and results as
// matmul-blocked.wgsl. Each invocation computes a (4 * ROW_BLOCKS) x
// (4 * COL_BLOCKS) output block, and every invocation of a workgroup works
// on the same rows, so the A values of a k step are the same in all lanes.
// Instead of each lane loading all of them, lane j of every 8 loads the 4 x 4
// blocks j, j + 8, ... of the step and subgroupBroadcast hands each block to
// the others. On llvmpipe, where a storage load costs about ten
// instructions per lane and a broadcast one or two, this cuts the loads
// of A by 8.
//
// Needs a subgroup size of at least 8 (the launcher checks the adapter's
// subgroupMinSize) and ROW_BLOCKS a multiple of 8. The broadcasts need
// every lane, so no invocation returns before the k loop: lanes past the
// last column block compute on zeros and skip the store.
//
// Bindings: 1 a (read; f32 or vec4<f32>, see matmul-load-*.wgsl), 2 b (read; same),
//   3 out (read_write, f32).
// Uniforms: those of matmul-blocked.wgsl, plus col_groups = ceil(col_tiles /
//   WORKGROUP_SIZE), the workgroups per row of output blocks.
// Constants: ROW_BLOCKS (a multiple of 8), COL_BLOCKS, TRANSPOSE_A,
//   TRANSPOSE_B, LOADS, COMMON as in matmul-blocked.wgsl; SHARED_BLOCKS =
//   the multiply-adds of one k step, written out per row block by
//   matmul.ts, because subgroupBroadcast takes a constant lane.
// Workgroup: WORKGROUP_SIZE x 1 x 1, consecutive invocations on
//   consecutive column blocks of one row of blocks.
// Grid: col_groups * batch * row_tiles workgroups, folded past 65,535.

enable subgroups;

const ROW_BLOCKS: u32 = {{ROW_BLOCKS}}u;
const COL_BLOCKS: u32 = {{COL_BLOCKS}}u;
const TRANSPOSE_A: bool = {{TRANSPOSE_A}};
const TRANSPOSE_B: bool = {{TRANSPOSE_B}};
const SHARED_LANES: u32 = {{SHARED_LANES}}u;
const LANE_BLOCKS: u32 = ROW_BLOCKS / SHARED_LANES;

{{LOADS}}

{{COMMON}}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) sid: u32) {
  let group = workgroup_linear(wid, nwg);
  let row_group = group / params.col_groups;
  // The same for the whole workgroup, so the broadcasts stay in uniform
  // control flow.
  if (row_group >= params.tiles / params.col_tiles) {
    return;
  }
  let col_tile = (group % params.col_groups) * WORKGROUP_SIZE + lid;
  let row_tile = row_group % params.row_tiles;
  let batch = row_group / params.row_tiles;
  let m0 = row_tile * ROW_BLOCKS * 4u;
  let n0 = col_tile * COL_BLOCKS * 4u;
  let offsets = batch_offsets(batch);
  let lane = sid % SHARED_LANES;

  // acc[rb * COL_BLOCKS + cb][r] holds row m0 + 4 * rb + r, columns
  // n0 + 4 * cb .. n0 + 4 * cb + 3, as in matmul-blocked.wgsl.
  var acc: array<array<vec4<f32>, 4>, ROW_BLOCKS * COL_BLOCKS>;
  var bb: array<mat4x4<f32>, COL_BLOCKS>;
  var loaded: array<mat4x4<f32>, LANE_BLOCKS>;
  for (var k = 0u; k < params.k; k += 4u) {
    for (var q = 0u; q < LANE_BLOCKS; q++) {
      loaded[q] = a_block(offsets.x, m0 + 4u * (q * SHARED_LANES + lane), k);
    }
    for (var cb = 0u; cb < COL_BLOCKS; cb++) {
      bb[cb] = b_block(offsets.y, k, n0 + 4u * cb);
    }
{{SHARED_BLOCKS}}
  }

  if (col_tile >= params.col_tiles) {
    return;
  }
  store_block(batch * params.m * params.n, m0, n0, &acc);
}
