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
//   RUN is the number of consecutive elements of out per invocation (see
//   kernels/runs.ts: long runs on CPU adapters, 1 on GPUs).
// Workgroup: WORKGROUP_SIZE x 1 x 1. Grid: ceil(size / (RUN *
//   WORKGROUP_SIZE)) workgroups, folded into 2D or 3D past 65,535.

{{MATH}}

fn op(x: f32, y: f32, alpha: f32, beta: f32) -> f32 {
  return {{EXPR}};
}

// Offsets into a and b of element i of out.
fn sources_of(i: u32) -> vec2<u32> {
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
  return vec2<u32>(ia, ib);
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
  if (params.rank == 0u) {
    for (var i = first; i < last; i++) {
      out[i] = op(a[i], b[i], params.alpha, params.beta);
    }
    return;
  }
  // Full index arithmetic once per run and per wrap of the innermost axis;
  // in between, each step adds the innermost strides.
  let d = params.rank - 1u;
  let inner_dim = params.shape[d / 4u][d % 4u];
  let stride_a = params.a_strides[d / 4u][d % 4u];
  let stride_b = params.b_strides[d / 4u][d % 4u];
  var i = first;
  loop {
    let sources = sources_of(i);
    var ia = sources.x;
    var ib = sources.y;
    let row_end = min(last, i + inner_dim - i % inner_dim);
    for (; i < row_end; i++) {
      out[i] = op(a[ia], b[ib], params.alpha, params.beta);
      ia += stride_a;
      ib += stride_b;
    }
    if (i >= last) {
      break;
    }
  }
}
