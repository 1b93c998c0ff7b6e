// Affine flow, forward: the voxel displacement flow(p) = A p + t - p of a
// 3x4 affine [A | t] at every voxel p = (d, h, w) of a [D, H, W] grid.
//
// Layout: matrix [N, 3, 4] f32 row-major, row r = (A_r0, A_r1, A_r2, t_r)
// acting on (d, h, w, 1); flow [N, 3, D, H, W] f32, channel r the
// displacement along axis r (D, H, W) in voxels. Invocation t writes the
// three channels of a run of RUN voxels along W of one row (n, d, h).
//
// Bindings: 1 matrix (read, f32, 12 N values), 2 flow (read_write, f32).
// Uniforms: total = N * D * H * runs invocations; depth, height, width =
//   D, H, W; runs = ceil(W / RUN).
// Constants: RUN, voxels per invocation along W.
// Workgroup: WORKGROUP_SIZE x 1 x 1; neighbouring invocations take
//   neighbouring runs of a row. Grid: ceil(total / WORKGROUP_SIZE)
//   workgroups, folded past 65,535.

const RUN: u32 = {{RUN}}u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = global_index(wid, nwg, lid);
  if (t >= params.total) {
    return;
  }
  let run = t % params.runs;
  var rest = t / params.runs;
  let h = rest % params.height;
  rest = rest / params.height;
  let d = rest % params.depth;
  let n = rest / params.depth;
  let plane = params.depth * params.height * params.width;
  let row = (d * params.height + h) * params.width;
  let first = run * RUN;
  let last = min(first + RUN, params.width);

  for (var r = 0u; r < 3u; r++) {
    let m = n * 12u + r * 4u;
    // Row r of A minus row r of the identity, so the sum is A p + t - p.
    var a = vec3<f32>(matrix[m], matrix[m + 1u], matrix[m + 2u]);
    a[r] = a[r] - 1.0;
    let offset = a.x * f32(d) + a.y * f32(h) + matrix[m + 3u];
    let out = (n * 3u + r) * plane + row;
    for (var w = first; w < last; w++) {
      flow[out + w] = offset + a.z * f32(w);
    }
  }
}
