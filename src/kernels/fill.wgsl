// Fills a buffer with one value: out[i] = value.
//
// Bindings: 1 out (read_write, f32).
// Uniforms: size = elements; value = the fill value.
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
  out[i] = params.value;
}
