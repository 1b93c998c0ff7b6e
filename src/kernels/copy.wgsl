// Streaming copy for the benchmark ceilings: out[i] = x[i] over vec4s, one
// vec4 per invocation, so the kernel only moves memory. Bytes = 2 * 16 *
// size (one read and one write per vec4).
//
// Bindings: 1 x (read, vec4<f32>), 2 out (read_write, vec4<f32>).
// Uniforms: size = vec4s to copy.
// Workgroup: WORKGROUP_SIZE x 1 x 1. Grid: ceil(size / WORKGROUP_SIZE)
//   workgroups, folded past 65,535.

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = global_index(wid, nwg, lid);
  if (i >= params.size) {
    return;
  }
  out[i] = x[i];
}
