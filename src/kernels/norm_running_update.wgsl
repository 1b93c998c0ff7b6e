// Batch normalisation in training mode: updates the running statistics in
// place from the batch statistics, as PyTorch does:
//   running_mean = (1 - momentum) * running_mean + momentum * mean,
//   running_var = (1 - momentum) * running_var + momentum * var * unbias,
// where var is the biased batch variance and unbias = n / (n - 1) turns it
// into the unbiased one (n = N * D * H * W elements per channel).
//
// Layout: stats is [C] vec4(mean, rstd, var, n) from norm_merge;
// running_mean and running_var are [C] f32.
//
// Bindings: 1 stats (read, vec4<f32>), 2 running_mean (read_write, f32),
//   3 running_var (read_write, f32).
// Uniforms: channels; momentum; unbias.
// Workgroup: WORKGROUP_SIZE x 1 x 1, one invocation per channel.
// Grid: ceil(channels / WORKGROUP_SIZE).

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let c = global_index(wid, nwg, lid);
  if (c >= params.channels) {
    return;
  }
  let stat = stats[c];
  let decay = 1.0 - params.momentum;
  running_mean[c] = decay * running_mean[c] + params.momentum * stat.x;
  running_var[c] = decay * running_var[c] + params.momentum * (stat.z * params.unbias);
}
