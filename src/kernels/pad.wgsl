// Constant padding: out[c] = x[c - before] where that coordinate lies in
// x, else value. A negative `before` or a negative trailing pad crops x.
//
// Bindings: 1 x (read, f32), 2 out (read_write, f32).
// Uniforms: size = elements of out; rank (at least 1); value = fill value;
//   out_shape; x_shape; x_strides = x's element strides; before = leading
//   pad per axis as i32 bits (negative crops). Ranks up to 8.
// Constants: {{RUN}} = consecutive elements of out per invocation (see
//   expand.wgsl). The outer axes are decoded once per run and per wrap of
//   the innermost axis.
// Workgroup: WORKGROUP_SIZE x 1 x 1. Grid: ceil(size / (RUN *
//   WORKGROUP_SIZE)) workgroups, folded into 2D or 3D past 65,535.

fn axis_value(values: array<vec4<u32>, 2>, d: u32) -> u32 {
  return values[d / 4u][d % 4u];
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let first = global_index(wid, nwg, lid) * {{RUN}}u;
  if (first >= params.size) {
    return;
  }
  let last = min(first + {{RUN}}u, params.size);
  let inner = params.rank - 1u;
  let inner_dim = axis_value(params.out_shape, inner);
  let inner_before = bitcast<i32>(axis_value(params.before, inner));
  let inner_x_dim = i32(axis_value(params.x_shape, inner));
  let inner_stride = axis_value(params.x_strides, inner);
  var i = first;
  loop {
    // Decode the outer axes of element i.
    var rest = i / inner_dim;
    var base = 0u;
    var inside = true;
    for (var d = i32(inner) - 1; d >= 0; d--) {
      let dim = axis_value(params.out_shape, u32(d));
      let coord = i32(rest % dim) - bitcast<i32>(axis_value(params.before, u32(d)));
      rest = rest / dim;
      if (coord < 0 || coord >= i32(axis_value(params.x_shape, u32(d)))) {
        inside = false;
      } else {
        base += u32(coord) * axis_value(params.x_strides, u32(d));
      }
    }
    let start = i % inner_dim;
    let steps = min(last - i, inner_dim - start);
    for (var k = 0u; k < steps; k++) {
      let coord = i32(start + k) - inner_before;
      if (inside && coord >= 0 && coord < inner_x_dim) {
        out[i + k] = x[base + u32(coord) * inner_stride];
      } else {
        out[i + k] = params.value;
      }
    }
    i += steps;
    if (i >= last) {
      break;
    }
  }
}
