// Nearest-neighbour warp, forward: out[n, c, p] = image[n, c, round(p + flow[n, :, p])],
// or 0 when the rounded point lies outside the volume. Every output value
// is an input value or 0, so label maps stay label maps. round() is WGSL's
// round half to even along each axis: a point at exactly k + 0.5 takes the
// even one of k and k + 1.
//
// Layout: volumes are [N, C, D, H, W] row-major and the flow is
// [N, 3, D, H, W] with channels (D, H, W) in voxels.
// Bindings: 1 image (read, f32) [N, C, D, H, W]; 2 flow (read, f32)
//   [N, 3, D, H, W]; 3 out (read_write, f32) [N, C, D, H, W].
// Uniforms: voxels = N * D * H * W; channels = C; depth, height, width =
//   D, H, W; plane = D * H * W.
// Workgroup: WORKGROUP_SIZE x 1 x 1, one invocation per output voxel and
//   all of its channels.
// Grid: ceil(voxels / WORKGROUP_SIZE) workgroups, folded past 65,535.

// The rounded index along one axis, clamped into the volume, and 1 when
// the unclamped index lies inside (else 0). The clamp to [-1, size] before
// the conversion keeps far points outside, and the integer clamp keeps
// every read in bounds even for a NaN position.
fn nearest_index(position: f32, size: u32) -> vec2<u32> {
  let rounded = i32(clamp(round(position), -1.0, f32(size)));
  let last = i32(size) - 1;
  let inside = rounded >= 0 && rounded <= last;
  return vec2<u32>(u32(clamp(rounded, 0, last)), select(0u, 1u, inside));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = global_index(wid, nwg, lid);
  if (i >= params.voxels) {
    return;
  }
  let plane = params.plane;
  let width = params.width;
  let height = params.height;
  let n = i / plane;
  let s = i - n * plane;
  let row = s / width;
  let w = s - row * width;
  let d = row / height;
  let h = row - d * height;
  let flow_base = 3u * n * plane + s;
  let z = nearest_index(f32(d) + flow[flow_base], params.depth);
  let y = nearest_index(f32(h) + flow[flow_base + plane], height);
  let x = nearest_index(f32(w) + flow[flow_base + 2u * plane], width);
  let inside = z.y * y.y * x.y == 1u;
  let source = (z.x * height + y.x) * width + x.x;
  var base = n * params.channels * plane;
  for (var c = 0u; c < params.channels; c++) {
    out[base + s] = select(0.0, image[base + source], inside);
    base += plane;
  }
}
