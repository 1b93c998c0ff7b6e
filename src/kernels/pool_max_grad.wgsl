// max_pool3d, backward: each input gathers the upstream gradient of the
// outputs whose argmax it is, so no two invocations write one element and
// no atomics are needed; the sum runs in a fixed order, so results repeat
// bitwise.
//
// Layout: grad is [N, C, D, H, W] f32 read as [volumes, D, H, W];
// upstream and indices are [volumes, out_depth, out_height, out_width]
// (indices from pool_max). Along one axis, input i lies in the window of
// output o when o * stride - padding <= i <= o * stride - padding +
// kernel - 1, that is for o from ceil((i + padding - kernel + 1) /
// stride) to floor((i + padding) / stride), clipped to the output: at
// most ceil(kernel / stride) outputs per axis. pool.ts computes those
// ranges once per axis, and the table holds them at spans_<axis> + 2 i as
// (first, end). Each covering output whose index equals this input's flat
// index adds its upstream value.
//
// Bindings: 1 upstream (read, f32), 2 indices (read, u32), 3 table (read,
//   u32), 4 grad (read_write, f32).
// Uniforms: total = volumes * depth * height * runs invocations; runs =
//   ceil(width / run_length); run_length = inputs along W per invocation;
//   the geometry of pool_max; spans_depth, spans_height, spans_width =
//   offsets of each axis's ranges in the table.
// Workgroup: WORKGROUP_SIZE x 1 x 1, one invocation per run of run_length
//   inputs along W. Grid: ceil(total / WORKGROUP_SIZE), folded past 65,535.

fn span(offset: u32, i: u32) -> vec2<u32> {
  return vec2<u32>(table[offset + 2u * i], table[offset + 2u * i + 1u]);
}

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
  let x_stop = min(x_begin + params.run_length, params.width);
  let iy = row % params.height;
  let iz = (row / params.height) % params.depth;
  let volume = row / (params.height * params.depth);
  let zs = span(params.spans_depth, iz);
  let ys = span(params.spans_height, iy);
  let out_base = volume * params.out_depth * params.out_height * params.out_width;
  let row_flat = (iz * params.height + iy) * params.width;

  for (var ix = x_begin; ix < x_stop; ix++) {
    let flat = row_flat + ix;
    let xs = span(params.spans_width, ix);
    var total = 0.0;
    for (var z = zs.x; z < zs.y; z++) {
      for (var y = ys.x; y < ys.y; y++) {
        let line = out_base + (z * params.out_height + y) * params.out_width;
        for (var x = xs.x; x < xs.y; x++) {
          if (indices[line + x] == flat) {
            total += upstream[line + x];
          }
        }
      }
    }
    grad[row * params.width + ix] = total;
  }
}
