// Exponential moving average, in place:
//   average = average * alpha + (1 - alpha) * source.
// (`target` would be the natural name, but WGSL reserves it.)
//
// Bindings: 1 average (read_write, f32), 2 source (read, f32), `size`
//   elements each.
// Uniforms: size; alpha; one_minus_alpha (computed in float64, rounded to f32).
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
  average[i] = average[i] * params.alpha + params.one_minus_alpha * source[i];
}
