// Affine flow, backward: partial sums of the gradient of the 12 matrix
// entries, grad [A | t]_rk = sum over voxels p of g_r(p) * (d, h, w, 1)_k,
// where g = dL/dflow. The caller sums the partials of each batch item.
//
// Layout: upstream [N, 3, D, H, W] f32; partials [N, parts, 3] vec4<f32>,
// element (n, part, r) = the sums of row r over the voxels of `part`.
// Invocation (n, part) takes voxels v = part, part + parts, part + 2 parts,
// ... below D * H * W, so neighbouring invocations read neighbouring
// voxels and every sum has a fixed order.
//
// Bindings: 1 upstream (read, f32), 2 partials (read_write, vec4<f32>).
// Uniforms: total = N * parts invocations; parts per batch item; voxels =
//   D * H * W; height, width = H, W.
// Workgroup: WORKGROUP_SIZE x 1 x 1. Grid: ceil(total / WORKGROUP_SIZE)
//   workgroups, folded past 65,535.

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = global_index(wid, nwg, lid);
  if (t >= params.total) {
    return;
  }
  let part = t % params.parts;
  let n = t / params.parts;
  let voxels = params.voxels;
  let plane_hw = params.height * params.width;
  let base = n * 3u * voxels;
  var sum_d = vec4<f32>(0.0);
  var sum_h = vec4<f32>(0.0);
  var sum_w = vec4<f32>(0.0);
  for (var v = part; v < voxels; v += params.parts) {
    let d = v / plane_hw;
    let h = (v / params.width) % params.height;
    let w = v % params.width;
    let point = vec4<f32>(f32(d), f32(h), f32(w), 1.0);
    sum_d += upstream[base + v] * point;
    sum_h += upstream[base + voxels + v] * point;
    sum_w += upstream[base + 2u * voxels + v] * point;
  }
  let out = t * 3u;
  partials[out] = sum_d;
  partials[out + 1u] = sum_h;
  partials[out + 2u] = sum_w;
}
