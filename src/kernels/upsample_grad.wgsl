// upsample3d, backward for both modes: each input gathers the upstream
// gradient of the outputs that read it, times the weight they read it
// with, so no two invocations write one element and no atomics are
// needed. The sum runs in a fixed order, so results repeat bitwise.
//
// Layout: grad is [N, C, D, H, W] f32 read as [volumes, D, H, W];
// upstream is [volumes, out_depth, out_height, out_width]. Besides the
// taps of upsample_linear, the table holds per input position i of each
// axis, at spans_<axis> + 3 i, the first output position that reads i, the
// count of consecutive positions from there that may (the source index
// never decreases with the output position, so those readers are
// contiguous), and the offset of their weights: the weight with which
// each reader o reads i along the axis,
//   (first(o) == i) * (1 - weight(o)) + (second(o) == i) * weight(o),
// rounded in float32 as upsample_linear rounds it (1 for nearest). The 3D
// weight is the product over the axes.
//
// Bindings: 1 upstream (read, f32), 2 table (read, u32), 3 grad
//   (read_write, f32).
// Uniforms: total = volumes * depth * height * runs invocations; runs =
//   ceil(width / run_length); run_length = inputs along W per invocation;
//   depth, height, width; out_depth, out_height, out_width; spans_depth,
//   spans_height, spans_width = offsets of each axis's spans in the table;
//   taps_depth, taps_height, taps_width (shared with the forward kernels,
//   unused here).
// Workgroup: WORKGROUP_SIZE x 1 x 1, one invocation per run of run_length
//   inputs along W. Grid: ceil(total / WORKGROUP_SIZE), folded past 65,535.

// (first reader, reader count, offset of the readers' weights) of input i.
fn span(spans: u32, i: u32) -> vec3<u32> {
  let at = spans + 3u * i;
  return vec3<u32>(table[at], table[at + 1u], table[at + 2u]);
}

fn reader_weight(span_entry: vec3<u32>, k: u32) -> f32 {
  return bitcast<f32>(table[span_entry.z + k]);
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
    for (var kz = 0u; kz < zs.y; kz++) {
      let wz = reader_weight(zs, kz);
      for (var ky = 0u; ky < ys.y; ky++) {
        let wzy = wz * reader_weight(ys, ky);
        let line = out_base + ((zs.x + kz) * params.out_height + ys.x + ky) * params.out_width;
        for (var kx = 0u; kx < xs.y; kx++) {
          total += wzy * reader_weight(xs, kx) * upstream[line + xs.x + kx];
        }
      }
    }
    grad[row * params.width + ix] = total;
  }
}
