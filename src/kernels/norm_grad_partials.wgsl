// Normalisation, backward pass 1: per piece of a row, the sums that the
// closed-form gradient needs.
//
// Layout: x and upstream are [N, C, D, H, W] f32 (or any contiguous
// tensor) read as [rows, length], with the statistic, channel and weight
// of norm_apply. With xhat = (x - mean) * rstd and dxhat = upstream *
// weight, each invocation sums over piece k of row r (chunk_size elements
// from k * chunk_size)
//   stat_partials[2 t] = sum dxhat, stat_partials[2 t + 1] = sum dxhat * xhat,
// and, when affine_partials == 1,
//   weight_partials[t] = sum upstream * xhat, bias_partials[t] = sum upstream,
// where t = r * chunks + k (row order). The caller reduces these with the
// fixed-order reductions of reduce.ts: per statistic for norm_grad, per
// channel for the weight and bias gradients.
//
// Bindings: 1 x (read, f32), 2 upstream (read, f32), 3 stats (read,
//   vec4<f32>), 4 weight (read, f32; a placeholder unless has_weight is 1),
//   5 stat_partials (read_write, f32), 6 weight_partials, 7 bias_partials
//   (read_write, f32; placeholders unless affine_partials is 1).
// Uniforms: rows; length; chunks; chunk_size; rows_per_stat; stat_count;
//   channels; per_position; has_weight; affine_partials.
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
  let stat = stats[(row / params.rows_per_stat) % params.stat_count];
  let mean = stat.x;
  let rstd = stat.y;
  let row_weight = weight_at(row % params.channels);

  var sum_dxhat = 0.0;
  var sum_dxhat_xhat = 0.0;
  var sum_upstream_xhat = 0.0;
  var sum_upstream = 0.0;
  for (var i = 0u; i < count; i++) {
    let g = upstream[start + i];
    let xhat = (x[start + i] - mean) * rstd;
    var w = row_weight;
    if (params.per_position == 1u) {
      w = weight_at(offset + i);
    }
    let dxhat = g * w;
    sum_dxhat += dxhat;
    sum_dxhat_xhat += dxhat * xhat;
    sum_upstream_xhat += g * xhat;
    sum_upstream += g;
  }
  stat_partials[2u * t] = sum_dxhat;
  stat_partials[2u * t + 1u] = sum_dxhat_xhat;
  if (params.affine_partials == 1u) {
    weight_partials[t] = sum_upstream_xhat;
    bias_partials[t] = sum_upstream;
  }
}
