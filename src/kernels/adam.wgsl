// One Adam or AdamW step on one parameter, in place, following the update
// order of PyTorch 1.13's single-tensor Adam and AdamW:
//   Adam:  g = grad + weight_decay * param          (L2, in the gradient)
//   AdamW: param = param * decay_factor             (1 - lr * weight_decay)
//   m = m * beta1 + (1 - beta1) * g
//   v = v * beta2 + (1 - beta2) * g * g
//   amsgrad: v_max = max(v_max, v), and v_max replaces v below
//   denom = sqrt(v) / sqrt(bias_correction2) + eps
//   param = param + (step_size_neg * m) / denom,  step_size_neg = -lr / bias_correction1
//
// Bindings: 1 param (read_write), 2 grad (read), 3 exp_avg (read_write),
//   4 exp_avg_sq (read_write), 5 max_exp_avg_sq (read_write; a 1-element
//   placeholder unless AMSGRAD). All f32, `size` elements.
// Uniforms: size; beta1, one_minus_beta1, beta2, one_minus_beta2;
//   weight_decay (Adam only, 0 for AdamW); decay_factor (AdamW, else 1);
//   step_size_neg; bias_correction2_sqrt; eps. The scalars are computed in
//   float64 on the CPU and rounded to f32, as PyTorch rounds Python floats.
// Constants: {{AMSGRAD}} is true or false.
// Workgroup: WORKGROUP_SIZE x 1 x 1. Grid: ceil(size / WORKGROUP_SIZE)
//   workgroups, folded into 2D or 3D past 65,535.

const AMSGRAD: bool = {{AMSGRAD}};

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = global_index(wid, nwg, lid);
  if (i >= params.size) {
    return;
  }
  let p = param[i] * params.decay_factor;
  let g = grad[i] + params.weight_decay * p;
  let m = exp_avg[i] * params.beta1 + params.one_minus_beta1 * g;
  let v = exp_avg_sq[i] * params.beta2 + (params.one_minus_beta2 * g) * g;
  exp_avg[i] = m;
  exp_avg_sq[i] = v;
  var second = v;
  if (AMSGRAD) {
    second = max(max_exp_avg_sq[i], v);
    max_exp_avg_sq[i] = second;
  }
  let denom = sqrt(second) / params.bias_correction2_sqrt + params.eps;
  param[i] = p + (params.step_size_neg * m) / denom;
}
