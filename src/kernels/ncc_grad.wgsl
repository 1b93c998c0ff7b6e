// Local NCC, backward pass 3 of 3: the last box sum (along D) of the
// coefficients from ncc_cc, and the gradients of the loss with respect to
// both volumes.
//
// Layout: a, b, grad_a, grad_b are [N, C, D, H, W] f32; coefficients and
// coefficients5 are the ncc_cc coefficients already box-summed along W and H,
// volumes of the same shape. All are seen as [outer = N*C, length = D,
// inner = H*W].
// Why a box sum: a sample a[x] enters the window sums Sa, Saa and Sab of
// every window that contains x, and the windows containing x are exactly the
// positions of the (symmetric) window around x. After the box sum along D the
// coefficients hold, at x, Ba = box(dcc/dSa), Bb, Baa, Bbb and Bab, and
//   d(sum of cc)/da[x] = Ba + 2 a[x] Baa + b[x] Bab
//   d(sum of cc)/db[x] = Bb + 2 b[x] Bbb + a[x] Bab.
// The loss is -mean(cc), so both are scaled by upstream[0] * scale with
// scale = -1 / (number of voxels of a).
//
// Bindings: 1 coefficients (read, vec4<f32>), 2 coefficients5 (read, f32),
//   3 a (read, f32), 4 b (read, f32), 5 upstream (read, f32; element 0 is
//   the gradient of the loss), 6 grad_a (read_write, f32),
//   7 grad_b (read_write, f32).
// Uniforms: total, outer, length, inner, segments, radius as in ncc_box;
//   scale as above.
// Constants: SEGMENT = positions per invocation.
// Workgroup: WORKGROUP_SIZE x 1 x 1. Grid: ceil(total / WORKGROUP_SIZE)
//   workgroups, folded past 65,535.

const SEGMENT: u32 = {{SEGMENT}}u;

fn write_gradients(index: u32, s: vec4<f32>, s_ab: f32, factor: f32) {
  let va = a[index];
  let vb = b[index];
  grad_a[index] = factor * (s.x + 2.0 * va * s.z + vb * s_ab);
  grad_b[index] = factor * (s.y + 2.0 * vb * s.w + va * s_ab);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = global_index(wid, nwg, lid);
  if (t >= params.total) {
    return;
  }
  let q = t % params.inner;
  let rest = t / params.inner;
  let segment = rest % params.segments;
  let p = rest / params.segments;
  let base = p * params.length * params.inner + q;
  let step = params.inner;
  let length = i32(params.length);
  let radius = i32(params.radius);
  let first = i32(segment * SEGMENT);
  let last = min(first + i32(SEGMENT), length);
  let factor = upstream[0] * params.scale;

  // The whole window of the first position.
  var acc = vec4<f32>(0.0);
  var acc5 = 0.0;
  for (var j = max(first - radius, 0); j <= min(first + radius, length - 1); j++) {
    acc += coefficients[base + u32(j) * step];
    acc5 += coefficients5[base + u32(j) * step];
  }
  write_gradients(base + u32(first) * step, acc, acc5, factor);

  for (var i = first + 1; i < last; i++) {
    var enter = vec4<f32>(0.0);
    var enter5 = 0.0;
    let j_in = i + radius;
    if (j_in < length) {
      enter = coefficients[base + u32(j_in) * step];
      enter5 = coefficients5[base + u32(j_in) * step];
    }
    var leave = vec4<f32>(0.0);
    var leave5 = 0.0;
    let j_out = i - radius - 1;
    if (j_out >= 0) {
      leave = coefficients[base + u32(j_out) * step];
      leave5 = coefficients5[base + u32(j_out) * step];
    }
    acc += enter - leave;
    acc5 += enter5 - leave5;
    write_gradients(base + u32(i) * step, acc, acc5, factor);
  }
}
