// Soft Dice loss, forward pass 2: Dice per (sample, class) row, the loss,
// and the per-row coefficients of the backward pass.
//
// Layout: sums is [rows = N * K] vec4(I, P, T, 0) with I = sum p * t,
// P = sum p, T = sum t over the row's voxels (dice_sums, then loss_sum).
//   dice[row] = (2 I + epsilon) / (P + T + epsilon)
//   loss      = 1 - mean of dice over the rows whose class k = row % K is
//               at least first_class (1 when the background is excluded)
// The epsilon in both numerator and denominator keeps a class that is empty
// in both p and t finite: its Dice is 1 and its gradients are finite.
// Coefficients, the derivative of dice[row] with respect to p (and t) being
// alpha * t - beta (and alpha * p - beta):
//   coefficients[row] = vec4(alpha = 2 / den, beta = num / den^2, dice, 0)
// with num, den the numerator and denominator above; alpha = beta = 0 for
// excluded rows.
//
// Bindings: 1 sums (read, vec4<f32>), 2 loss (read_write, f32, 1 element),
//   3 coefficients (read_write, vec4<f32>, [rows]).
// Uniforms: rows; classes = K; first_class = 0 or 1; epsilon;
//   inv_count = 1 / (N * (K - first_class)).
// Workgroup: 1 x 1 x 1, a single invocation that visits the rows in order,
//   so the mean is reproducible bit for bit. Grid: 1 workgroup.

@compute @workgroup_size(1)
fn main() {
  var total = 0.0;
  for (var row = 0u; row < params.rows; row++) {
    let s = sums[row];
    let num = 2.0 * s.x + params.epsilon;
    let den = s.y + s.z + params.epsilon;
    let dice = num / den;
    if (row % params.classes >= params.first_class) {
      total += dice;
      coefficients[row] = vec4<f32>(2.0 / den, num / (den * den), dice, 0.0);
    } else {
      coefficients[row] = vec4<f32>(0.0, 0.0, dice, 0.0);
    }
  }
  loss[0] = 1.0 - total * params.inv_count;
}
