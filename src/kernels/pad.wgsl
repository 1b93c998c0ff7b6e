// Constant padding: out[c] = x[c - before] where that coordinate lies in
// x, else value. A negative `before` or a negative trailing pad crops x.
//
// Bindings: 1 x (read, f32), 2 out (read_write, f32).
// Uniforms: size = elements of out; rank; value = fill value; out_shape;
//   x_shape; x_strides = x's element strides; before = leading pad per axis
//   as i32 bits (negative crops). Ranks up to 8.
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
  var ix = 0u;
  var inside = true;
  for (var d = i32(params.rank) - 1; d >= 0; d--) {
    let dim = params.out_shape[d / 4][d % 4];
    let coord = i32(rest % dim) - bitcast<i32>(params.before[d / 4][d % 4]);
    rest = rest / dim;
    if (coord < 0 || coord >= i32(params.x_shape[d / 4][d % 4])) {
      inside = false;
    } else {
      ix += u32(coord) * params.x_strides[d / 4][d % 4];
    }
  }
  if (inside) {
    out[i] = x[ix];
  } else {
    out[i] = params.value;
  }
}
