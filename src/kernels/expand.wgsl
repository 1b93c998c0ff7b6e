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
  var ix = params.offset;
  for (var d = i32(params.rank) - 1; d >= 0; d--) {
    let dim = params.shape[d / 4][d % 4];
    ix += (rest % dim) * params.x_strides[d / 4][d % 4];
    rest = rest / dim;
  }
  out[i] = x[ix] * params.scale;
}
