// Operand loaders of the matmul kernels, scalar form: not a kernel of its
// own, matmul.ts splices this text into matmul-blocked.wgsl,
// matmul-subgroup.wgsl and matmul-tiled.wgsl at the LOADS placeholder.
//
// a_run(base, row, col) returns the stored elements (row, col..col+3) of the
// operand matrix that starts at element `base` of `a`, whose stored shape is
// params.a_rows x params.a_cols, row-major; b_run does the same for `b`.
// Elements outside the stored matrix read as 0.
//
// Works for any shape and offset: a and b are bound as array<f32> and each
// element is loaded on its own, with its index clamped into the matrix.

fn run_element(inside: bool, value: f32) -> f32 {
  return select(0.0, value, inside);
}

fn a_run(base: u32, row: u32, col: u32) -> vec4<f32> {
  let row_inside = row < params.a_rows;
  let start = base + min(row, params.a_rows - 1u) * params.a_cols;
  let last = params.a_cols - 1u;
  return vec4<f32>(
    run_element(row_inside && col < params.a_cols, a[start + min(col, last)]),
    run_element(row_inside && col + 1u < params.a_cols, a[start + min(col + 1u, last)]),
    run_element(row_inside && col + 2u < params.a_cols, a[start + min(col + 2u, last)]),
    run_element(row_inside && col + 3u < params.a_cols, a[start + min(col + 3u, last)]));
}

fn b_run(base: u32, row: u32, col: u32) -> vec4<f32> {
  let row_inside = row < params.b_rows;
  let start = base + min(row, params.b_rows - 1u) * params.b_cols;
  let last = params.b_cols - 1u;
  return vec4<f32>(
    run_element(row_inside && col < params.b_cols, b[start + min(col, last)]),
    run_element(row_inside && col + 1u < params.b_cols, b[start + min(col + 1u, last)]),
    run_element(row_inside && col + 2u < params.b_cols, b[start + min(col + 2u, last)]),
    run_element(row_inside && col + 3u < params.b_cols, b[start + min(col + 3u, last)]));
}
