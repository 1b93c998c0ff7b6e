// Elementwise select with broadcasting: out[i] = a[ia] where cond[ic] != 0,
// else b[ib]. A NaN condition counts as nonzero.
//
// Bindings: 1 cond (read, f32), 2 a (read, f32), 3 b (read, f32),
//   4 out (read_write, f32).
// Uniforms: size = elements of out; rank, shape = out's rank and dims;
//   cond_strides, a_strides, b_strides = element strides of each input per
//   out axis, 0 on broadcast axes. Ranks up to 8 (two vec4 per array).
// Workgroup: WORKGROUP_SIZE x 1 x 1. Grid: ceil(size / WORKGROUP_SIZE)
//   workgroups, folded into 2D or 3D past 65,535.

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = global_index(wid, nwg, lid);
  if (i >= params.size) {
    return;
  }
  var rest = i;
  var ic = 0u;
  var ia = 0u;
  var ib = 0u;
  for (var d = i32(params.rank) - 1; d >= 0; d--) {
    let dim = params.shape[d / 4][d % 4];
    let coord = rest % dim;
    rest = rest / dim;
    ic += coord * params.cond_strides[d / 4][d % 4];
    ia += coord * params.a_strides[d / 4][d % 4];
    ib += coord * params.b_strides[d / 4][d % 4];
  }
  // Compare the bits with zero (either sign) so that NaN counts as true.
  let is_true = (bitcast<u32>(cond[ic]) & 0x7fffffffu) != 0u;
  out[i] = select(b[ib], a[ia], is_true);
}
