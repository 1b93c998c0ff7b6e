// upsample3d, mode 'nearest' (PyTorch's legacy nearest), forward.
//
// Layout: x is [N, C, D, H, W] f32, contiguous, read as [volumes = N * C,
// D, H, W]; out is [volumes, out_depth, out_height, out_width].
// The per-axis tables of upsample.ts hold, at taps_<axis> + 3 o, the
// source index of output position o along that axis (min(floor(o *
// ratio), in - 1)) as the first entry; the other two entries are unused
// here. Each output copies x at its three source indices.
//
// Bindings: 1 x (read, f32), 2 table (read, u32), 3 out (read_write, f32).
// Uniforms: as upsample_linear.
// Workgroup: WORKGROUP_SIZE x 1 x 1, one invocation per run of run_length
//   outputs along W. Grid: ceil(total / WORKGROUP_SIZE), folded past
//   65,535.

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = global_index(wid, nwg, lid);
  if (t >= params.total) {
    return;
  }
  let row = t / params.runs;
  let x_begin = (t % params.runs) * params.run_length;
  let x_stop = min(x_begin + params.run_length, params.out_width);
  let oy = row % params.out_height;
  let oz = (row / params.out_height) % params.out_depth;
  let volume = row / (params.out_height * params.out_depth);
  let iz = table[params.taps_depth + 3u * oz];
  let iy = table[params.taps_height + 3u * oy];
  let source = ((volume * params.depth + iz) * params.height + iy) * params.width;
  for (var ox = x_begin; ox < x_stop; ox++) {
    out[row * params.out_width + ox] = x[source + table[params.taps_width + 3u * ox]];
  }
}
