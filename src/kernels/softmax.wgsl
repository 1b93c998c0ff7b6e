// Softmax or log-softmax along one axis, with the maximum subtracted first
// so exp() cannot overflow. x is read as [outer, axis_size, inner]; one
// invocation handles one (outer, inner) position and loops over the axis
// three times (maximum, sum of exponentials, output). For a channel axis of
// an [N, C, D, H, W] volume, inner is D * H * W, so neighbouring
// invocations read neighbouring voxels.
//
// Bindings: 1 x (read, T), 2 out (read_write, T).
// Uniforms: size = outer * inner; axis_size; inner; per_invocation =
//   consecutive (outer, inner) positions each invocation handles.
// Constants: {{LOG}} is 'true' for log-softmax, 'false' for softmax. {{T}}
//   is the element type, f32, or vec4<f32> when inner is a multiple of 4:
//   then size and inner count groups of 4 positions along inner, and every
//   operation below acts on the 4 lanes at once. On CPU adapters such as
//   llvmpipe, which load storage buffers lane by lane, one vec4 load costs
//   about as much as one f32 load.
// Workgroup: WORKGROUP_SIZE x 1 x 1. Grid: ceil(size / (per_invocation *
//   WORKGROUP_SIZE)), folded into 2D or 3D past 65,535.

fn softmax_at(o: u32) {
  let base = (o / params.inner) * params.axis_size * params.inner + o % params.inner;
  let step = params.inner;
  var maximum = x[base];
  for (var c = 1u; c < params.axis_size; c++) {
    maximum = max(maximum, x[base + c * step]);
  }
  var total = {{T}}(0.0);
  for (var c = 0u; c < params.axis_size; c++) {
    total += exp(x[base + c * step] - maximum);
  }
  if ({{LOG}}) {
    let shift = maximum + log(total);
    for (var c = 0u; c < params.axis_size; c++) {
      out[base + c * step] = x[base + c * step] - shift;
    }
  } else {
    let inverse = 1.0 / total;
    for (var c = 0u; c < params.axis_size; c++) {
      out[base + c * step] = exp(x[base + c * step] - maximum) * inverse;
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
    softmax_at(o);
  }
}
