// Batch normalisation in evaluation mode: turns the running statistics
// into the vec4 statistics that norm_apply and norm_grad read.
//
// Layout: running_mean and running_var are [C] f32; stats is [C]
//   vec4(mean, 1 / sqrt(var + eps), var, 0).
//
// Bindings: 1 running_mean (read, f32), 2 running_var (read, f32),
//   3 stats (read_write, vec4<f32>).
// Uniforms: channels; eps.
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
  let variance = running_var[c];
  stats[c] = vec4<f32>(running_mean[c], inverseSqrt(variance + params.eps), variance, 0.0);
}
