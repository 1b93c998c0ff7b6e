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
// Uniforms: runs = N * D * H * runs_per_row; runs_per_row = ceil(W /
//   RUN); channels = C; depth, height, width = D, H, W; plane = D * H * W.
// Constants: the placeholder WARP_CELL is the text of warp_cell.wgsl (for
//   its runs); RUN is the number of voxels along W per invocation (long
//   runs on CPU adapters, 1 on GPUs).
// Workgroup: WORKGROUP_SIZE x 1 x 1, one invocation per run of RUN voxels
//   of one row. For each voxel it rounds the point once and then copies
//   every channel.
// Grid: ceil(runs / WORKGROUP_SIZE) workgroups, folded past 65,535.

{{WARP_CELL}}

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
  let index = global_index(wid, nwg, lid);
  if (index >= params.runs) {
    return;
  }
  let run = run_of(index, {{RUN}}u);
  let plane = params.plane;
  let width = params.width;
  let height = params.height;
  let z_base = f32(run.d);
  let y_base = f32(run.h);
  let item_base = run.n * params.channels * plane;
  for (var k = 0u; k < run.count; k++) {
    let s = run.s_first + k;
    let flow_base = 3u * run.n * plane + s;
    let z = nearest_index(z_base + flow[flow_base], params.depth);
    let y = nearest_index(y_base + flow[flow_base + plane], height);
    let x = nearest_index(f32(run.first + k) + flow[flow_base + 2u * plane], width);
    let inside = z.y * y.y * x.y == 1u;
    let source = (z.x * height + y.x) * width + x.x;
    var base = item_base;
    for (var c = 0u; c < params.channels; c++) {
      out[base + s] = select(0.0, image[base + source], inside);
      base += plane;
    }
  }
}
