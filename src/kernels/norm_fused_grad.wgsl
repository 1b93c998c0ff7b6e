// Normalisation over a short strided axis, backward: the input gradient of
// norm_fused in closed form.
//
// Layout: x, upstream and grad are [N, C, D, H, W] f32 (or any contiguous
// tensor) read as [outer, channels, inner] like norm_fused, whose stats
// [outer * inner] vec4(mean, rstd, var, n) it reads. Per position, with
// xhat = (x - mean) * rstd and dxhat = upstream * weight[c],
//   grad = rstd * (dxhat - mean_c(dxhat) - xhat * mean_c(dxhat * xhat)).
// Each invocation owns one position: one pass for the two means over the
// channels, one to write the gradient.
//
// Bindings: 1 x (read, f32), 2 upstream (read, f32), 3 stats (read,
//   vec4<f32>), 4 weight (read, f32; a placeholder unless has_weight is 1),
//   5 grad (read_write, f32).
// Uniforms: outer; channels; inner; has_weight; run_length = consecutive
//   positions per invocation.
// Workgroup: WORKGROUP_SIZE x 1 x 1, one invocation per run of run_length
//   positions. Grid: ceil(outer * inner / (run_length * WORKGROUP_SIZE)),
//   folded past 65,535.

fn weight_at(c: u32) -> f32 {
  if (params.has_weight == 1u) {
    return weight[c];
  }
  return 1.0;
}

fn position_gradient(t: u32) {
  let a = t / params.inner;
  let s = t % params.inner;
  let start = a * params.channels * params.inner + s;
  let step = params.inner;
  let stat = stats[t];
  let mean = stat.x;
  let rstd = stat.y;

  var sum_dxhat = 0.0;
  var sum_dxhat_xhat = 0.0;
  for (var c = 0u; c < params.channels; c++) {
    let i = start + c * step;
    let dxhat = upstream[i] * weight_at(c);
    sum_dxhat += dxhat;
    sum_dxhat_xhat += dxhat * (x[i] - mean) * rstd;
  }
  let inv_count = 1.0 / f32(params.channels);
  let mean_dxhat = sum_dxhat * inv_count;
  let mean_dxhat_xhat = sum_dxhat_xhat * inv_count;

  for (var c = 0u; c < params.channels; c++) {
    let i = start + c * step;
    let dxhat = upstream[i] * weight_at(c);
    let xhat = (x[i] - mean) * rstd;
    grad[i] = rstd * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat);
  }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let first = global_index(wid, nwg, lid) * params.run_length;
  let end = min(first + params.run_length, params.outer * params.inner);
  for (var t = first; t < end; t++) {
    position_gradient(t);
  }
}
