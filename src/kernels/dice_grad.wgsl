// Soft Dice loss, backward: the gradient with respect to one input, the
// probabilities or the target (truth). A loss whose inputs both need a
// gradient runs it twice, which moves the same bytes as one fused pass, and
// a detached input (a pseudo label, say) costs nothing.
//
// Layout: other and grad are [N, K, D, H, W] f32, contiguous, handled in
// quads of 4 voxels of each (sample, class) row as in dice_sums; other is
// the input not differentiated (truth for the gradient of probs, probs for
// the gradient of truth); coefficients is [N * K] vec4(alpha, beta, dice, 0)
// from dice_finish. With loss = 1 - inv_count * sum of dice over included
// rows:
//   grad[i] = upstream[0] * scale * (alpha * other[i] - beta)
// for every voxel i of row r, scale = -inv_count.
//
// Bindings: 1 other (read; f32, or vec4<f32> when D * H * W % 4 == 0),
//   2 coefficients (read, vec4<f32>), 3 upstream (read, f32; element 0 is
//   the gradient of the loss), 4 grad (read_write; same type as other).
// Uniforms: total = rows * quads for the rows bound (all N * K rows, or a
//   group of them when the tensors exceed one binding); first_row = the
//   index of the first bound row in coefficients; width = D * H * W; quads;
//   scale as above.
// Constants: QUAD_IO = generated load_other and store_grad (quad_io.ts).
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
  store_grad(row, quad, factor * (alpha * load_other(row, quad) - beta));
}
