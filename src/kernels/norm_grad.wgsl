// Normalisation, backward pass 2: the input gradient in closed form.
//
// Layout: x, upstream and grad are [N, C, D, H, W] f32 (or any contiguous
// tensor) read as [rows, length], with the statistic, channel and weight
// of norm_apply. With xhat = (x - mean) * rstd and dxhat = upstream *
// weight, the gradient of out = xhat * weight + bias through statistics
// computed from x is
//   grad = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),
// the means taken over the statistic's elements: sums[2 s] and
// sums[2 s + 1] times inv_count (norm_grad_partials, reduced). With fixed
// statistics (batch norm in evaluation mode, batch_stats == 0) the
// statistics do not depend on x and grad = rstd * dxhat.
//
// Bindings: 1 x (read, f32), 2 upstream (read, f32), 3 stats (read,
//   vec4<f32>), 4 weight (read, f32; a placeholder unless has_weight is 1),
//   5 sums (read, f32; a placeholder when batch_stats is 0),
//   6 grad (read_write, f32).
// Uniforms: rows; length; chunks; chunk_size; rows_per_stat; stat_count;
//   channels; per_position; has_weight; batch_stats; inv_count = 1 /
//   elements per statistic.
// Workgroup: WORKGROUP_SIZE x 1 x 1, one invocation per (row, piece).
// Grid: ceil(rows * chunks / WORKGROUP_SIZE), folded past 65,535.

fn weight_at(i: u32) -> f32 {
  if (params.has_weight == 1u) {
    return weight[i];
  }
  return 1.0;
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
  let stat_index = (row / params.rows_per_stat) % params.stat_count;
  let stat = stats[stat_index];
  let mean = stat.x;
  let rstd = stat.y;
  let row_weight = weight_at(row % params.channels);
  var mean_dxhat = 0.0;
  var mean_dxhat_xhat = 0.0;
  if (params.batch_stats == 1u) {
    mean_dxhat = sums[2u * stat_index] * params.inv_count;
    mean_dxhat_xhat = sums[2u * stat_index + 1u] * params.inv_count;
  }

  for (var i = 0u; i < count; i++) {
    var w = row_weight;
    if (params.per_position == 1u) {
      w = weight_at(offset + i);
    }
    let dxhat = upstream[start + i] * w;
    let xhat = (x[start + i] - mean) * rstd;
    grad[start + i] = rstd * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat);
  }
}
