// Operand loaders of the matmul kernels, vec4 form: not a kernel of its own,
// matmul.ts splices this text into matmul-blocked.wgsl,
// matmul-subgroup.wgsl and matmul-tiled.wgsl at the LOADS placeholder.
//
// a_run(base, row, col) returns the stored elements (row, col..col+3) of the
// operand matrix that starts at element `base` of `a`, whose stored shape is
// params.a_rows x params.a_cols, row-major; b_run does the same for `b`.
// Elements outside the stored matrix read as 0.
//
// Requires: a and b bound as array<vec4<f32>>; a_cols, b_cols, base and col
// multiples of 4, so a run is one aligned vec4 that lies wholly inside or
// wholly outside the matrix. Indices are clamped before the load, so no
// access leaves the binding even for rows past the end.

fn a_run(base: u32, row: u32, col: u32) -> vec4<f32> {
  let inside = row < params.a_rows && col < params.a_cols;
  let r = min(row, params.a_rows - 1u);
  let c = min(col, params.a_cols - 4u);
  return select(vec4<f32>(0.0), a[(base + r * params.a_cols + c) / 4u], inside);
}

fn b_run(base: u32, row: u32, col: u32) -> vec4<f32> {
  let inside = row < params.b_rows && col < params.b_cols;
  let r = min(row, params.b_rows - 1u);
  let c = min(col, params.b_cols - 4u);
  return select(vec4<f32>(0.0), b[(base + r * params.b_cols + c) / 4u], inside);
}
