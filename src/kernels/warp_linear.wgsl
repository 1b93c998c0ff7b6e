// Trilinear warp (spatial transformer), forward: for every output voxel p,
// out[n, c, p] = sum over the 8 corners q of the cell of p + flow[n, :, p]
// of weight(q) * image[n, c, q], with weight 0 for corners outside the
// volume (grid_sample with align_corners=True and padding_mode='zeros').
// See warp_cell.wgsl for the coordinate convention and corner order.
//
// Bindings: 1 image (read, f32) [N, C, D, H, W]; 2 flow (read, f32)
//   [N, 3, D, H, W]; 3 out (read_write, f32) [N, C, D, H, W].
// Uniforms: runs = N * D * H * runs_per_row; runs_per_row = ceil(W /
//   RUN); channels = C; depth, height, width = D, H, W; plane = D * H * W.
// Constants: the placeholder WARP_CELL is the text of warp_cell.wgsl; RUN
//   is the number of voxels along W per invocation (long runs on CPU
//   adapters, where each invocation has a fixed cost, 1 on GPUs).
// Workgroup: WORKGROUP_SIZE x 1 x 1, one invocation per run of RUN voxels
//   of one row (the last run of a row may be shorter). For each voxel it
//   computes the cell and its weights once and then every channel.
// Grid: ceil(runs / WORKGROUP_SIZE) workgroups, folded past 65,535.
//
// A flow of exact integers gives weights of exactly 1 and 0, so the output
// is the input shifted exactly (bitwise for finite values, except that a
// -0.0 input element comes back as +0.0).

{{WARP_CELL}}

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
  let item_base = run.n * params.channels * plane;
  for (var k = 0u; k < run.count; k++) {
    let s = run.s_first + k;
    let cell = cell_of(point_of(run, k));
    let weight_x0 = cell.rows * cell.sides.x;
    let weight_x1 = cell.rows * cell.sides.y;
    var base = item_base;
    for (var c = 0u; c < params.channels; c++) {
      let i0 = cell.index_x0 + vec4<u32>(base);
      let i1 = cell.index_x1 + vec4<u32>(base);
      let values_x0 = vec4<f32>(image[i0.x], image[i0.y], image[i0.z], image[i0.w]);
      let values_x1 = vec4<f32>(image[i1.x], image[i1.y], image[i1.z], image[i1.w]);
      let value = dot(weight_x0, values_x0) + dot(weight_x1, values_x1);
      // A zero weight times a negative value is -0.0: write zeros as +0.0,
      // so that points outside the volume give exactly 0.
      out[base + s] = select(value, 0.0, value == 0.0);
      base += plane;
    }
  }
}
