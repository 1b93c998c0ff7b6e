// avg_pool3d, backward: each input gathers upstream / divisor from every
// output whose window covers it, so no two invocations write one element
// and no atomics are needed; the sum runs in a fixed order, so results
// repeat bitwise.
//
// Layout: grad is [N, C, D, H, W] f32 read as [volumes, D, H, W];
// upstream is [volumes, out_depth, out_height, out_width]. The covering
// outputs along one axis are those of pool_max_grad (at most
// ceil(kernel / stride) of them), read from the table at spans_<axis> +
// 2 i as (first, end). Without count_include_pad an output's divisor is
// the product over the axes of the inputs its window covers inside the
// volume, which the table holds per output position at inside_<axis> + o;
// with it, the divisor is the full window size.
//
// Bindings: 1 upstream (read, f32), 2 table (read, u32), 3 grad
//   (read_write, f32).
// Uniforms: total = volumes * depth * height * runs invocations; runs =
//   ceil(width / run_length); run_length = inputs along W per invocation;
//   the geometry of pool_avg, count_include_pad included; spans_depth,
//   spans_height, spans_width and inside_depth, inside_height,
//   inside_width = offsets into the table.
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
  let full = f32(params.kernel_depth * params.kernel_height * params.kernel_width);
  let include_pad = params.count_include_pad == 1u;

  for (var ix = x_begin; ix < x_stop; ix++) {
    let xs = span(params.spans_width, ix);
    var total = 0.0;
    for (var z = zs.x; z < zs.y; z++) {
      let count_z = table[params.inside_depth + z];
      for (var y = ys.x; y < ys.y; y++) {
        let count_zy = count_z * table[params.inside_height + y];
        let line = out_base + (z * params.out_height + y) * params.out_width;
        for (var x = xs.x; x < xs.y; x++) {
          var divisor = full;
          if (!include_pad) {
            divisor = f32(count_zy * table[params.inside_width + x]);
          }
          total += upstream[line + x] / divisor;
        }
      }
    }
    grad[row * params.width + ix] = total;
  }
}
