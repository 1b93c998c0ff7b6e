// Reduction over a set of axes: out[o] = combine over r of x[base(o) + off(r)].
//
// Bindings: 1 x (read, f32), 2 out (read_write, f32).
// Uniforms: out_size = elements of out; out_rank, out_shape, out_strides =
//   the kept axes of x, their sizes and x's element strides along them;
//   red_rank, red_shape, red_strides = the same for the reduced axes;
//   red_size = elements reduced per output; scale = factor applied to the
//   result (1 / red_size for mean, else 1). Ranks up to 8.
// Constants: {{INIT}} is the identity value, {{COMBINE}} combines acc and v.
// Workgroup: WORKGROUP_SIZE x 1 x 1, one workgroup per output element; its
//   invocations stride over the reduced elements, then a tree reduction in
//   workgroup memory combines them in a fixed order (deterministic).
// Grid: out_size workgroups, folded into 2D or 3D past 65,535.

var<workgroup> partial: array<f32, WORKGROUP_SIZE>;

fn combine(acc: f32, v: f32) -> f32 {
  return {{COMBINE}};
}

fn offset_of(index: u32, rank: u32, shape: array<vec4<u32>, 2>, strides: array<vec4<u32>, 2>) -> u32 {
  var rest = index;
  var offset = 0u;
  for (var d = i32(rank) - 1; d >= 0; d--) {
    let dim = shape[d / 4][d % 4];
    offset += (rest % dim) * strides[d / 4][d % 4];
    rest = rest / dim;
  }
  return offset;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let o = workgroup_linear(wid, nwg);
  // o is uniform across the workgroup, so the early return keeps barriers uniform.
  if (o >= params.out_size) {
    return;
  }
  let base = offset_of(o, params.out_rank, params.out_shape, params.out_strides);
  var acc = f32({{INIT}});
  for (var r = lid; r < params.red_size; r += WORKGROUP_SIZE) {
    acc = combine(acc, x[base + offset_of(r, params.red_rank, params.red_shape, params.red_strides)]);
  }
  partial[lid] = acc;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) {
      partial[lid] = combine(partial[lid], partial[lid + stride]);
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    out[o] = partial[0] * params.scale;
  }
}
