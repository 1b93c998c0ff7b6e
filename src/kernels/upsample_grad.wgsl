// upsample3d, backward for both modes: each input gathers the upstream
// gradient of the outputs that read it, times the weight they read it
// with, so no two invocations write one element and no atomics are
// needed. The sum runs in a fixed order, so results repeat bitwise.
//
// Layout: grad is [N, C, D, H, W] f32 read as [volumes, D, H, W];
// upstream is [volumes, out_depth, out_height, out_width]. Besides the
// taps of upsample_linear (3 u32 per output position, at taps_<axis>), the
// table holds per input position i of each axis, at spans_<axis> + 2 i,
// the first output position that reads i and the count of consecutive
// positions from there that may (the source index never decreases with
// the output position, so those readers are contiguous). Along one axis
// output o weighs input i by
//   (first(o) == i) * (1 - weight(o)) + (second(o) == i) * weight(o),
// which is 1 for nearest (weight 0, second == first), and the 3D weight
// is the product over the axes.
//
// Bindings: 1 upstream (read, f32), 2 table (read, u32), 3 grad
//   (read_write, f32).
// Uniforms: total = volumes * depth * height * runs invocations; runs =
//   ceil(width / run_length); run_length = inputs along W per invocation;
//   depth, height, width; out_depth, out_height, out_width; taps_depth,
//   taps_height, taps_width; spans_depth, spans_height, spans_width =
//   offsets of each axis's spans in the table.
// Workgroup: WORKGROUP_SIZE x 1 x 1, one invocation per run of run_length
//   inputs along W. Grid: ceil(total / WORKGROUP_SIZE), folded past 65,535.

// Weight with which output o reads input i along one axis.
fn tap_weight(taps: u32, o: u32, i: u32) -> f32 {
  let at = taps + 3u * o;
  let weight = bitcast<f32>(table[at + 2u]);
  var total = 0.0;
  if (table[at] == i) {
    total += 1.0 - weight;
  }
  if (table[at + 1u] == i) {
    total += weight;
  }
  return total;
}

fn span(spans: u32, i: u32) -> vec2<u32> {
  let first = table[spans + 2u * i];
  return vec2<u32>(first, first + table[spans + 2u * i + 1u]);
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

  for (var ix = x_begin; ix < x_stop; ix++) {
    let xs = span(params.spans_width, ix);
    var total = 0.0;
    for (var z = zs.x; z < zs.y; z++) {
      let wz = tap_weight(params.taps_depth, z, iz);
      for (var y = ys.x; y < ys.y; y++) {
        let wzy = wz * tap_weight(params.taps_height, y, iy);
        let line = out_base + (z * params.out_height + y) * params.out_width;
        for (var x = xs.x; x < xs.y; x++) {
          total += wzy * tap_weight(params.taps_width, x, ix) * upstream[line + x];
        }
      }
    }
    grad[row * params.width + ix] = total;
  }
}
