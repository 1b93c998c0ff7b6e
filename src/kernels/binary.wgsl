// Elementwise binary op with broadcasting: out[i] = op(a[ia], b[ib]).
//
// Bindings: 1 a (read, f32), 2 b (read, f32), 3 out (read_write, f32).
// Uniforms: size = elements of out; rank = rank of out, or 0 when a, b and
//   out share one shape (then ia = ib = i); alpha, beta = op parameters (for
//   example the slope of leakyRelu's gradient, the bounds of clamp's);
//   shape = out dims; a_strides and b_strides = element strides of a and b
//   per out axis, 0 on broadcast axes. Ranks up to 8 (two vec4 per array).
// Constants: EXPR is the expression of x (from a), y (from b), alpha and
//   beta; MATH is elementwise-math.wgsl, the helpers EXPR may call.
// Workgroup: WORKGROUP_SIZE x 1 x 1. Grid: ceil(size / WORKGROUP_SIZE)
//   workgroups, folded into 2D or 3D past 65,535.

{{MATH}}

fn op(x: f32, y: f32, alpha: f32, beta: f32) -> f32 {
  return {{EXPR}};
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = global_index(wid, nwg, lid);
  if (i >= params.size) {
    return;
  }
  if (params.rank == 0u) {
    out[i] = op(a[i], b[i], params.alpha, params.beta);
    return;
  }
  var rest = i;
  var ia = 0u;
  var ib = 0u;
  for (var d = i32(params.rank) - 1; d >= 0; d--) {
    let dim = params.shape[d / 4][d % 4];
    let coord = rest % dim;
    rest = rest / dim;
    ia += coord * params.a_strides[d / 4][d % 4];
    ib += coord * params.b_strides[d / 4][d % 4];
  }
  out[i] = op(a[ia], b[ib], params.alpha, params.beta);
}
