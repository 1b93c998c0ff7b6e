// Normalisation, forward: out = (x - mean) * rstd * weight + bias with the
// statistics of norm_merge, over the same [rows, length] view as
// norm_stats.
//
// Layout: x and out are [N, C, D, H, W] f32 (or any contiguous tensor)
// read as [rows, length]; row r uses stats[(r / rows_per_stat) %
// stat_count] = vec4(mean, rstd, var, n). weight and bias are indexed by
// the row's channel r % channels when per_position == 0 (instance, group
// and batch norm, weight [C]) and by the position inside the row when
// per_position == 1 (layer norm, weight of the normalised shape).
// Each invocation writes piece k of row r (chunk_size elements from
// k * chunk_size), so the row's statistic and channel are read once.
//
// Bindings: 1 x (read, f32), 2 stats (read, vec4<f32>), 3 weight (read,
//   f32), 4 bias (read, f32), 5 out (read_write, f32). weight and bias are
//   placeholders unless has_weight / has_bias is 1.
// Uniforms: rows; length; chunks = ceil(length / chunk_size); chunk_size;
//   rows_per_stat; stat_count; channels; per_position; has_weight;
//   has_bias.
// Workgroup: WORKGROUP_SIZE x 1 x 1, one invocation per (row, piece).
// Grid: ceil(rows * chunks / WORKGROUP_SIZE), folded past 65,535.

fn weight_at(i: u32) -> f32 {
  if (params.has_weight == 1u) {
    return weight[i];
  }
  return 1.0;
}

fn bias_at(i: u32) -> f32 {
  if (params.has_bias == 1u) {
    return bias[i];
  }
  return 0.0;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = global_index(wid, nwg, lid);
  if (t >= params.rows * params.chunks) {
    return;
  }
  let row = t / params.chunks;
  let offset = (t % params.chunks) * params.chunk_size;
  let count = min(params.chunk_size, params.length - offset);
  let start = row * params.length + offset;
  let stat = stats[(row / params.rows_per_stat) % params.stat_count];
  let mean = stat.x;
  let rstd = stat.y;

  if (params.per_position == 0u) {
    let channel = row % params.channels;
    let scale = rstd * weight_at(channel);
    let shift = bias_at(channel);
    for (var i = 0u; i < count; i++) {
      out[start + i] = (x[start + i] - mean) * scale + shift;
    }
  } else {
    for (var i = 0u; i < count; i++) {
      let position = offset + i;
      out[start + i] = (x[start + i] - mean) * (rstd * weight_at(position)) + bias_at(position);
    }
  }
}
