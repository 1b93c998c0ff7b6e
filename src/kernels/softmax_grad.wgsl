// Backward of softmax and log-softmax along one axis, from the forward
// output y and the upstream gradient g (same [outer, axis_size, inner]
// layout as softmax.wgsl, one invocation per (outer, inner) position):
//   softmax:     dx = y * (g - sum_axis(g * y))
//   log-softmax: dx = g - exp(y) * sum_axis(g)
//
// Bindings: 1 y (read, f32), 2 g (read, f32), 3 dx (read_write, f32).
// Uniforms: size = outer * inner; axis_size; inner.
// Constants: {{LOG}} is 'true' for log-softmax, 'false' for softmax.
// Workgroup: WORKGROUP_SIZE x 1 x 1. Grid: ceil(size / WORKGROUP_SIZE),
//   folded into 2D or 3D past 65,535.

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let o = global_index(wid, nwg, lid);
  if (o >= params.size) {
    return;
  }
  let base = (o / params.inner) * params.axis_size * params.inner + o % params.inner;
  let step = params.inner;
  var total = 0.0;
  for (var c = 0u; c < params.axis_size; c++) {
    let i = base + c * step;
    if ({{LOG}}) {
      total += g[i];
    } else {
      total += g[i] * y[i];
    }
  }
  for (var c = 0u; c < params.axis_size; c++) {
    let i = base + c * step;
    if ({{LOG}}) {
      dx[i] = g[i] - exp(y[i]) * total;
    } else {
      dx[i] = y[i] * (g[i] - total);
    }
  }
}
