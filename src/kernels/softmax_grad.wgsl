// Backward of softmax and log-softmax along one axis, from the forward
// output y and the upstream gradient g (same [outer, axis_size, inner]
// layout as softmax.wgsl, one invocation per (outer, inner) position):
//   softmax:     dx = y * (g - sum_axis(g * y))
//   log-softmax: dx = g - exp(y) * sum_axis(g)
//
// Bindings: 1 y (read, T), 2 g (read, T), 3 dx (read_write, T).
// Uniforms: size = outer * inner; axis_size; inner; per_invocation =
//   consecutive (outer, inner) positions each invocation handles.
// Constants: {{LOG}} is 'true' for log-softmax, 'false' for softmax. {{T}}
//   is the element type, f32 or vec4<f32>, as in softmax.wgsl.
// Workgroup: WORKGROUP_SIZE x 1 x 1. Grid: ceil(size / (per_invocation *
//   WORKGROUP_SIZE)), folded into 2D or 3D past 65,535.

fn softmax_grad_at(o: u32) {
  let base = (o / params.inner) * params.axis_size * params.inner + o % params.inner;
  let step = params.inner;
  var total = {{T}}(0.0);
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

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let first = global_index(wid, nwg, lid) * params.per_invocation;
  let last = min(first + params.per_invocation, params.size);
  for (var o = first; o < last; o++) {
    softmax_grad_at(o);
  }
}
