// Soft Dice loss, backward: gradients with respect to the probabilities and
// the target (truth; `target` is a reserved word in WGSL).
//
// Layout: probs, truth, grad_probs and grad_truth are [N, K, D, H, W] f32,
// contiguous; coefficients is [N * K] vec4(alpha, beta, dice, 0) from
// dice_finish. With loss = 1 - inv_count * sum of dice over included rows:
//   grad_probs[i] = upstream[0] * scale * (alpha * truth[i] - beta)
//   grad_truth[i] = upstream[0] * scale * (alpha * probs[i] - beta)
// for i in row r = i / voxels, scale = -inv_count.
//
// Bindings: 1 probs (read, f32), 2 truth (read, f32),
//   3 coefficients (read, vec4<f32>), 4 upstream (read, f32; element 0 is the
//   gradient of the loss), 5 grad_probs (read_write, f32),
//   6 grad_truth (read_write, f32).
// Uniforms: size = N * K * voxels; voxels = D * H * W; scale as above.
// Workgroup: WORKGROUP_SIZE x 1 x 1. Grid: ceil(size / WORKGROUP_SIZE)
//   workgroups, folded past 65,535.

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = global_index(wid, nwg, lid);
  if (i >= params.size) {
    return;
  }
  let coefficient = coefficients[i / params.voxels];
  let factor = upstream[0] * params.scale;
  grad_probs[i] = factor * (coefficient.x * truth[i] - coefficient.y);
  grad_truth[i] = factor * (coefficient.x * probs[i] - coefficient.y);
}
