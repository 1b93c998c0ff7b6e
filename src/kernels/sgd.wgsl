// One SGD step on one parameter, in place, following the update order of
// PyTorch 1.13's single-tensor SGD:
//   d = grad + weight_decay * param
//   with momentum: buf = d on the first step, else buf * momentum + (1 - dampening) * d;
//     then d = d + momentum * buf (nesterov) or d = buf
//   param = param + lr_neg * d
//
// Bindings: 1 param (read_write), 2 grad (read), 3 momentum_buffer
//   (read_write; a 1-element placeholder unless MOMENTUM). All f32, `size`
//   elements.
// Uniforms: size; first_step (1 on the step that creates the buffer);
//   weight_decay; momentum; one_minus_dampening; lr_neg = -lr.
// Constants: {{MOMENTUM}} and {{NESTEROV}} are true or false.
// Workgroup: WORKGROUP_SIZE x 1 x 1. Grid: ceil(size / WORKGROUP_SIZE)
//   workgroups, folded into 2D or 3D past 65,535.

const MOMENTUM: bool = {{MOMENTUM}};
const NESTEROV: bool = {{NESTEROV}};

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = global_index(wid, nwg, lid);
  if (i >= params.size) {
    return;
  }
  let p = param[i];
  var d = grad[i] + params.weight_decay * p;
  if (MOMENTUM) {
    var buf = d;
    if (params.first_step == 0u) {
      buf = momentum_buffer[i] * params.momentum + params.one_minus_dampening * d;
    }
    momentum_buffer[i] = buf;
    if (NESTEROV) {
      d = d + params.momentum * buf;
    } else {
      d = buf;
    }
  }
  param[i] = p + params.lr_neg * d;
}
