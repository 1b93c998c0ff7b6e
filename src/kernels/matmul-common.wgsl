// Shared helpers of the matmul kernels: not a kernel of its own, matmul.ts
// splices this text into matmul-blocked.wgsl, matmul-subgroup.wgsl and
// matmul-tiled.wgsl at the COMMON placeholder. Needs the constants
// TRANSPOSE_A, TRANSPOSE_B, ROW_BLOCKS and COL_BLOCKS and the loaders
// a_run and b_run (matmul-load-*.wgsl).
//
// Element offsets of output matrix `batch` in a and b. batch runs over the
// broadcast batch shape params.batch_shape (rank params.batch_rank, up to
// 8) in row-major order; a_batch_strides and b_batch_strides hold each
// operand's element stride per batch axis, 0 where it is broadcast.
fn batch_offsets(batch: u32) -> vec2<u32> {
  var rest = batch;
  var offsets = vec2<u32>(0u, 0u);
  for (var d = i32(params.batch_rank) - 1; d >= 0; d--) {
    let dim = params.batch_shape[d / 4][d % 4];
    let coord = rest % dim;
    rest = rest / dim;
    offsets.x += coord * params.a_batch_strides[d / 4][d % 4];
    offsets.y += coord * params.b_batch_strides[d / 4][d % 4];
  }
  return offsets;
}

// A[m..m+3, k..k+3] of the logical (M x K) operand as a matrix whose column
// i is row m + i over k..k+3. With TRANSPOSE_A the storage is K x M, its
// rows run over m, and the 4 x 4 block is transposed in registers.
fn a_block(base: u32, m: u32, k: u32) -> mat4x4<f32> {
  if (TRANSPOSE_A) {
    return transpose(mat4x4<f32>(a_run(base, k, m), a_run(base, k + 1u, m),
                                 a_run(base, k + 2u, m), a_run(base, k + 3u, m)));
  }
  return mat4x4<f32>(a_run(base, m, k), a_run(base, m + 1u, k),
                     a_run(base, m + 2u, k), a_run(base, m + 3u, k));
}

// B[k..k+3, n..n+3] of the logical (K x N) operand as a matrix whose column
// j is row k + j over n..n+3. With TRANSPOSE_B the storage is N x K.
fn b_block(base: u32, k: u32, n: u32) -> mat4x4<f32> {
  if (TRANSPOSE_B) {
    return transpose(mat4x4<f32>(b_run(base, n, k), b_run(base, n + 1u, k),
                                 b_run(base, n + 2u, k), b_run(base, n + 3u, k)));
  }
  return mat4x4<f32>(b_run(base, k, n), b_run(base, k + 1u, n),
                     b_run(base, k + 2u, n), b_run(base, k + 3u, n));
}

// Adds the products of a 4 x 4 block of A (columns = rows of A) and B
// (columns = rows of B) to the 4 x 4 output block `acc` (one vec4 per row),
// in increasing k: every kernel variant uses this order and the same fma
// calls, so all of them produce the same bits on one adapter.
fn multiply_add(ab: mat4x4<f32>, bb: mat4x4<f32>, acc: ptr<function, array<vec4<f32>, 4>>) {
  for (var r = 0u; r < 4u; r++) {
    var s = (*acc)[r];
    s = fma(vec4<f32>(ab[r].x), bb[0], s);
    s = fma(vec4<f32>(ab[r].y), bb[1], s);
    s = fma(vec4<f32>(ab[r].z), bb[2], s);
    s = fma(vec4<f32>(ab[r].w), bb[3], s);
    (*acc)[r] = s;
  }
}

// Stores the output block of matmul-blocked.wgsl and matmul-subgroup.wgsl:
// acc[rb * COL_BLOCKS + cb][r] holds row m0 + 4 * rb + r, columns
// n0 + 4 * cb .. n0 + 4 * cb + 3 of the output matrix at out_base. Rows
// and columns past the output are skipped.
fn store_block(out_base: u32, m0: u32, n0: u32,
               acc: ptr<function, array<array<vec4<f32>, 4>, ROW_BLOCKS * COL_BLOCKS>>) {
  for (var rb = 0u; rb < ROW_BLOCKS; rb++) {
    for (var r = 0u; r < 4u; r++) {
      let row = m0 + 4u * rb + r;
      if (row >= params.m) {
        continue;
      }
      for (var cb = 0u; cb < COL_BLOCKS; cb++) {
        let values = (*acc)[rb * COL_BLOCKS + cb][r];
        for (var j = 0u; j < 4u; j++) {
          let col = n0 + 4u * cb + j;
          if (col < params.n) {
            out[out_base + row * params.n + col] = values[j];
          }
        }
      }
    }
  }
}
