// Batched matmul with shared-memory tiling: out[b] = A[b] x B[b], where
// A[b] is M x K and B[b] is K x N (logical shapes), out is [batch, M, N]
// row-major. A workgroup of TILE_COLS x TILE_ROWS invocations computes a
// TILE_M x TILE_N output tile: per step of TILE_K, it copies the A and B
// tiles into workgroup memory, waits at a barrier, and each invocation
// accumulates its (4 * ROW_BLOCKS) x (4 * COL_BLOCKS) block in registers.
// This is the usual fast form on GPUs, where workgroup memory is much
// faster than storage and barriers are cheap.
//
// Bindings: 1 a (read; f32 or vec4<f32>, see matmul-load-*.wgsl), 2 b (read; same),
//   3 out (read_write, f32).
// Uniforms: m, n, k = logical sizes; row_tiles = ceil(M / TILE_M),
//   col_tiles = ceil(N / TILE_N), tiles = batch * row_tiles * col_tiles;
//   a_rows, a_cols, b_rows, b_cols = stored matrix shapes; batch_rank,
//   batch_shape, a_batch_strides, b_batch_strides = the broadcast batch.
// Constants: TILE_COLS, TILE_ROWS = invocations along N and M;
//   ROW_BLOCKS, COL_BLOCKS = 4 x 4 blocks per invocation; TRANSPOSE_A,
//   TRANSPOSE_B = operands stored transposed; LOADS, COMMON as in
//   matmul-blocked.wgsl. TILE_M = 4 * ROW_BLOCKS * TILE_ROWS, TILE_N =
//   4 * COL_BLOCKS * TILE_COLS, TILE_K = 16.
// Workgroup memory: 4 * TILE_K * (TILE_M + TILE_N) bytes.
// Workgroup: WORKGROUP_SIZE = TILE_COLS * TILE_ROWS x 1 x 1.
// Grid: tiles workgroups (one output tile each), folded past 65,535.

const TILE_COLS: u32 = {{TILE_COLS}}u;
const TILE_ROWS: u32 = {{TILE_ROWS}}u;
const ROW_BLOCKS: u32 = {{ROW_BLOCKS}}u;
const COL_BLOCKS: u32 = {{COL_BLOCKS}}u;
const TRANSPOSE_A: bool = {{TRANSPOSE_A}};
const TRANSPOSE_B: bool = {{TRANSPOSE_B}};
const TILE_M: u32 = 4u * ROW_BLOCKS * TILE_ROWS;
const TILE_N: u32 = 4u * COL_BLOCKS * TILE_COLS;
const TILE_K: u32 = 16u;
const THREADS: u32 = TILE_COLS * TILE_ROWS;

// a_tile[kk * TILE_M / 4 + i] holds rows 4i..4i+3 of the tile at k0 + kk;
// b_tile[kk * TILE_N / 4 + j] holds columns 4j..4j+3 at k0 + kk.
var<workgroup> a_tile: array<vec4<f32>, TILE_K * TILE_M / 4u>;
var<workgroup> b_tile: array<vec4<f32>, TILE_K * TILE_N / 4u>;

{{LOADS}}

{{COMMON}}

// Copies A[m0.., k0..] into a_tile. Each run of 4 stored elements goes to
// one vec4 (rows stored contiguously) or to one component of 4 vec4s.
fn load_a_tile(base: u32, m0: u32, k0: u32, lid: u32) {
  for (var i = lid; i < TILE_M * TILE_K / 4u; i += THREADS) {
    if (TRANSPOSE_A) {
      let kk = i / (TILE_M / 4u);
      let mq = i % (TILE_M / 4u);
      a_tile[kk * (TILE_M / 4u) + mq] = a_run(base, k0 + kk, m0 + 4u * mq);
    } else {
      let mm = i / (TILE_K / 4u);
      let kq = i % (TILE_K / 4u);
      let run = a_run(base, m0 + mm, k0 + 4u * kq);
      for (var j = 0u; j < 4u; j++) {
        a_tile[(4u * kq + j) * (TILE_M / 4u) + mm / 4u][mm % 4u] = run[j];
      }
    }
  }
}

fn load_b_tile(base: u32, k0: u32, n0: u32, lid: u32) {
  for (var i = lid; i < TILE_N * TILE_K / 4u; i += THREADS) {
    if (TRANSPOSE_B) {
      let nn = i / (TILE_K / 4u);
      let kq = i % (TILE_K / 4u);
      let run = b_run(base, n0 + nn, k0 + 4u * kq);
      for (var j = 0u; j < 4u; j++) {
        b_tile[(4u * kq + j) * (TILE_N / 4u) + nn / 4u][nn % 4u] = run[j];
      }
    } else {
      let kk = i / (TILE_N / 4u);
      let nq = i % (TILE_N / 4u);
      b_tile[kk * (TILE_N / 4u) + nq] = b_run(base, k0 + kk, n0 + 4u * nq);
    }
  }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let tile = workgroup_linear(wid, nwg);
  // tile is uniform across the workgroup, so the early return keeps the
  // barriers below in uniform control flow.
  if (tile >= params.tiles) {
    return;
  }
  let col_tile = tile % params.col_tiles;
  let row_tile = (tile / params.col_tiles) % params.row_tiles;
  let batch = tile / (params.col_tiles * params.row_tiles);
  let m0 = row_tile * TILE_M;
  let n0 = col_tile * TILE_N;
  let offsets = batch_offsets(batch);
  let tx = lid % TILE_COLS;
  let ty = lid / TILE_COLS;

  // The invocation owns row groups ty + TILE_ROWS * rb and column groups
  // tx + TILE_COLS * cb (groups of 4), interleaved so that neighbouring
  // invocations read neighbouring vec4s of the tiles.
  var acc: array<array<vec4<f32>, 4>, ROW_BLOCKS * COL_BLOCKS>;
  for (var k0 = 0u; k0 < params.k; k0 += TILE_K) {
    load_a_tile(offsets.x, m0, k0, lid);
    load_b_tile(offsets.y, k0, n0, lid);
    workgroupBarrier();
    for (var kq = 0u; kq < TILE_K / 4u; kq++) {
      var bb: array<mat4x4<f32>, COL_BLOCKS>;
      for (var cb = 0u; cb < COL_BLOCKS; cb++) {
        let column = tx + TILE_COLS * cb;
        for (var j = 0u; j < 4u; j++) {
          bb[cb][j] = b_tile[(4u * kq + j) * (TILE_N / 4u) + column];
        }
      }
      for (var rb = 0u; rb < ROW_BLOCKS; rb++) {
        let group = ty + TILE_ROWS * rb;
        // Columns of a_rows are k steps; transposing gives rows over k.
        let ab = transpose(mat4x4<f32>(
          a_tile[(4u * kq) * (TILE_M / 4u) + group],
          a_tile[(4u * kq + 1u) * (TILE_M / 4u) + group],
          a_tile[(4u * kq + 2u) * (TILE_M / 4u) + group],
          a_tile[(4u * kq + 3u) * (TILE_M / 4u) + group]));
        for (var cb = 0u; cb < COL_BLOCKS; cb++) {
          multiply_add(ab, bb[cb], &acc[rb * COL_BLOCKS + cb]);
        }
      }
    }
    workgroupBarrier();
  }

  let out_base = batch * params.m * params.n;
  for (var rb = 0u; rb < ROW_BLOCKS; rb++) {
    for (var r = 0u; r < 4u; r++) {
      let row = m0 + 4u * (ty + TILE_ROWS * rb) + r;
      if (row >= params.m) {
        continue;
      }
      for (var cb = 0u; cb < COL_BLOCKS; cb++) {
        let values = acc[rb * COL_BLOCKS + cb][r];
        for (var j = 0u; j < 4u; j++) {
          let col = n0 + 4u * (tx + TILE_COLS * cb) + j;
          if (col < params.n) {
            out[out_base + row * params.n + col] = values[j];
          }
        }
      }
    }
  }
}
