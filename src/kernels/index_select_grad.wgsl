// Backward of index selection: dx[o, k, i] = sum of g[o, j, i] over every j
// with indices[j] == k, summed in increasing j (deterministic, no atomics).
// Each element scans all indices, so the cost is count reads per element
// of dx.
//
// Bindings: 1 g (read, f32), 2 indices (read, f32), 3 dx (read_write, f32).
// Uniforms: size = elements of dx; axis_size; count = number of indices;
//   inner.
// Constants: {{RUN}} = consecutive elements of dx per invocation (see
//   expand.wgsl).
// Workgroup: WORKGROUP_SIZE x 1 x 1. Grid: ceil(size / (RUN *
//   WORKGROUP_SIZE)) workgroups, folded into 2D or 3D past 65,535.

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let first = global_index(wid, nwg, lid) * {{RUN}}u;
  let last = min(first + {{RUN}}u, params.size);
  for (var o = first; o < last; o++) {
    let i = o % params.inner;
    let rest = o / params.inner;
    let k = f32(rest % params.axis_size);
    let outer = rest / params.axis_size;
    var total = 0.0;
    for (var j = 0u; j < params.count; j++) {
      if (indices[j] == k) {
        total += g[(outer * params.count + j) * params.inner + i];
      }
    }
    dx[o] = total;
  }
}
