// Strided copy with a scale factor: out[i] = x[offset + sum_d c_d * x_strides[d]] * scale,
// where c is the coordinate of i in out's shape. With stride 0 on some axes
// this broadcasts (expand, broadcastTo); with permuted strides it
// transposes (permute); with an offset and x's own strides it copies a
// box out of x (slice).
//
// Bindings: 1 x (read, f32), 2 out (read_write, f32).
// Uniforms: size = elements of out; rank, shape = out's rank and dims;
//   offset = element of x read for coordinate 0; x_strides = x's element
//   strides per out axis (0 where broadcast); scale. Ranks up to 8.
// Constants: {{RUN}} = consecutive elements of out per invocation. The
//   index arithmetic runs once per run and once per wrap of the innermost
//   axis, and each step in between adds the innermost stride. Runs longer
//   than 1 suit CPU adapters, which pay per invocation; 1 gives a GPU
//   neighbouring invocations on neighbouring elements (coalesced stores).
// Workgroup: WORKGROUP_SIZE x 1 x 1. Grid: ceil(size / (RUN *
//   WORKGROUP_SIZE)) workgroups, folded into 2D or 3D past 65,535.

// Element of x read for element i of out.
fn source_of(i: u32) -> u32 {
  var rest = i;
  var ix = params.offset;
  for (var d = i32(params.rank) - 1; d >= 0; d--) {
    let dim = params.shape[d / 4][d % 4];
    ix += (rest % dim) * params.x_strides[d / 4][d % 4];
    rest = rest / dim;
  }
  return ix;
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
  // Rank 0 (a single element) reads like an innermost axis of size 1.
  var inner_dim = 1u;
  var inner_stride = 0u;
  if (params.rank > 0u) {
    let d = params.rank - 1u;
    inner_dim = params.shape[d / 4u][d % 4u];
    inner_stride = params.x_strides[d / 4u][d % 4u];
  }
  var i = first;
  loop {
    let ix = source_of(i);
    let steps = min(last - i, inner_dim - i % inner_dim);
    for (var k = 0u; k < steps; k++) {
      out[i + k] = x[ix + k * inner_stride] * params.scale;
    }
    i += steps;
    if (i >= last) {
      break;
    }
  }
}
