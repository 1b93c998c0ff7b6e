// Elementwise unary op: out[i] = op(x[i]).
//
// Bindings: 1 x (read, f32), 2 out (read_write, f32).
// Uniforms: size = elements; alpha, beta = op parameters (for example the
//   slope of leakyRelu, the bounds of clamp, the factor of scale).
// Constants: EXPR is the expression of v, alpha and beta; MATH is
//   elementwise-math.wgsl, the helpers EXPR may call.
//   RUN is the number of consecutive elements per invocation (see
//   kernels/runs.ts: long runs on CPU adapters, 1 on GPUs).
// Workgroup: WORKGROUP_SIZE x 1 x 1. Grid: ceil(size / (RUN *
//   WORKGROUP_SIZE)) workgroups, folded into 2D or 3D past 65,535.

{{MATH}}

fn op(v: f32, alpha: f32, beta: f32) -> f32 {
  return {{EXPR}};
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let first = global_index(wid, nwg, lid) * {{RUN}}u;
  let last = min(first + {{RUN}}u, params.size);
  for (var i = first; i < last; i++) {
    out[i] = op(x[i], params.alpha, params.beta);
  }
}
