// Soft Dice loss, backward to one input only: the gradient with respect to
// the probabilities or to the target, when the other input needs none (a
// detached pseudo label, say). It reads half the data of dice_grad.
//
// Layout and formula as in dice_grad.wgsl: with `other` the input that is
// not differentiated (truth for grad_probs, probs for grad_truth),
//   grad[i] = upstream[0] * scale * (alpha * other[i] - beta)
// for every voxel i of row r, coefficients[r] = vec4(alpha, beta, dice, 0).
//
// Bindings: 1 other (read; f32, or vec4<f32> when D * H * W % 4 == 0),
//   2 coefficients (read, vec4<f32>), 3 upstream (read, f32; element 0 is
//   the gradient of the loss), 4 grad (read_write; same type as other).
// Uniforms: total, first_row, width, quads and scale as in dice_grad.
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
