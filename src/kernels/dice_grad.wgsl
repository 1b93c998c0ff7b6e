// Soft Dice loss, backward: gradients with respect to the probabilities and
// the target (truth; `target` is a reserved word in WGSL).
//
// Layout: probs, truth, grad_probs and grad_truth are [N, K, D, H, W] f32,
// contiguous, handled in quads of 4 voxels of each (sample, class) row as in
// dice_sums; coefficients is [N * K] vec4(alpha, beta, dice, 0) from
// dice_finish. With loss = 1 - inv_count * sum of dice over included rows:
//   grad_probs[i] = upstream[0] * scale * (alpha * truth[i] - beta)
//   grad_truth[i] = upstream[0] * scale * (alpha * probs[i] - beta)
// for every voxel i of row r, scale = -inv_count.
//
// Bindings: 1 probs (read; f32, or vec4<f32> when D * H * W % 4 == 0),
//   2 truth (same type), 3 coefficients (read, vec4<f32>), 4 upstream (read,
//   f32; element 0 is the gradient of the loss), 5 grad_probs (read_write;
//   same type as probs), 6 grad_truth (same).
// Uniforms: total = rows * quads for the rows bound (all N * K rows, or a
//   group of them when the tensors exceed one binding); first_row = the
//   index of the first bound row in coefficients; width = D * H * W; quads;
//   scale as above.
// Constants: QUAD_IO = generated load_probs, load_truth, store_grad_probs
//   and store_grad_truth (see quad_io.ts).
// Workgroup: WORKGROUP_SIZE x 1 x 1, one invocation per quad. Grid:
//   ceil(total / WORKGROUP_SIZE) workgroups, folded past 65,535.

{{QUAD_IO}}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = global_index(wid, nwg, lid);
  if (i >= params.total) {
    return;
  }
  let row = i / params.quads;
  let quad = i % params.quads;
  let coefficient = coefficients[params.first_row + row];
  let factor = upstream[0] * params.scale;
  let alpha = vec4<f32>(coefficient.x);
  let beta = vec4<f32>(coefficient.y);
  store_grad_probs(row, quad, factor * (alpha * load_truth(row, quad) - beta));
  store_grad_truth(row, quad, factor * (alpha * load_probs(row, quad) - beta));
}
