// Local NCC, forward pass 3 of 3: the last box sum (along D), the local
// correlation cc at every voxel, its partial derivatives for the backward
// pass, and per-invocation partial sums of cc for the loss.
//
// Layout: sums/sums5 are the moments of ncc_moments box-summed along W and H,
// [N, C, D, H, W] volumes seen as [outer = N*C, length = D, inner = H*W].
// After this pass's box sum along D, at every voxel (n = window_size samples
// per window, zeros outside the volume count as samples):
//   Sa, Sb, Saa, Sbb = sums.xyzw boxed; Sab = sums5 boxed
//   cross = Sab - Sa * Sb / n
//   var_a = max(Saa - Sa * Sa / n, 0), var_b = max(Sbb - Sb * Sb / n, 0)
//   cc    = cross^2 / (var_a * var_b + epsilon)
// This is VoxelMorph's NCC: with means ma = Sa / n and mb = Sb / n, its
// cross = Sab - mb Sa - ma Sb + ma mb n and its variances
// Saa - 2 ma Sa + ma^2 n reduce to the forms above. The clamp at zero stops
// rounding from making a variance of a flat window negative.
//
// Coefficients (when WRITE_COEFFICIENTS), the derivatives of cc with respect
// to the five window sums, which ncc_box and ncc_grad box-sum back:
//   g_cross = 2 cross / den, den = var_a * var_b + epsilon
//   g_var_a = -cc var_b / den (0 where the clamp is active), g_var_b alike
//   coefficients  = vec4(dcc/dSa, dcc/dSb, dcc/dSaa, dcc/dSbb)
//                 = vec4(-g_cross Sb / n - 2 g_var_a Sa / n,
//                        -g_cross Sa / n - 2 g_var_b Sb / n, g_var_a, g_var_b)
//   coefficients5 = dcc/dSab = g_cross
//
// Bindings: 1 sums (read, vec4<f32>), 2 sums5 (read, f32),
//   3 coefficients (read_write, vec4<f32>), 4 coefficients5 (read_write,
//   f32), 5 partials (read_write, vec4<f32>): partials[t] =
//   vec4(sum of cc over invocation t's positions, 0, 0, 0).
// Uniforms: total, outer, length, inner, segments, radius as in ncc_box;
//   inv_window_size = 1 / n; epsilon.
// Constants: SEGMENT = positions per invocation; WRITE_COEFFICIENTS = true
//   or false. A forward pass that needs no gradient uses false and binds
//   two 4-element stand-ins as the coefficients.
// Workgroup: WORKGROUP_SIZE x 1 x 1. Grid: ceil(total / WORKGROUP_SIZE)
//   workgroups, folded past 65,535.

const SEGMENT: u32 = {{SEGMENT}}u;
const WRITE_COEFFICIENTS: bool = {{WRITE_COEFFICIENTS}};

// Local correlation at one voxel from its window sums; stores the
// coefficients at `index` and returns cc.
fn correlate(index: u32, s: vec4<f32>, s_ab: f32) -> f32 {
  let inv_n = params.inv_window_size;
  let cross = s_ab - s.x * s.y * inv_n;
  let var_a_raw = s.z - s.x * s.x * inv_n;
  let var_b_raw = s.w - s.y * s.y * inv_n;
  let var_a = max(var_a_raw, 0.0);
  let var_b = max(var_b_raw, 0.0);
  let den = var_a * var_b + params.epsilon;
  let cc = cross * cross / den;
  if (WRITE_COEFFICIENTS) {
    let g_cross = 2.0 * cross / den;
    let g_var_a = select(0.0, -cc * var_b / den, var_a_raw > 0.0);
    let g_var_b = select(0.0, -cc * var_a / den, var_b_raw > 0.0);
    coefficients[index] = vec4<f32>(
      -(g_cross * s.y + 2.0 * g_var_a * s.x) * inv_n,
      -(g_cross * s.x + 2.0 * g_var_b * s.y) * inv_n,
      g_var_a,
      g_var_b,
    );
    coefficients5[index] = g_cross;
  }
  return cc;
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

  // The whole window of the first position.
  var acc = vec4<f32>(0.0);
  var acc5 = 0.0;
  for (var j = max(first - radius, 0); j <= min(first + radius, length - 1); j++) {
    acc += sums[base + u32(j) * step];
    acc5 += sums5[base + u32(j) * step];
  }
  var cc_sum = correlate(base + u32(first) * step, acc, acc5);

  for (var i = first + 1; i < last; i++) {
    var enter = vec4<f32>(0.0);
    var enter5 = 0.0;
    let j_in = i + radius;
    if (j_in < length) {
      enter = sums[base + u32(j_in) * step];
      enter5 = sums5[base + u32(j_in) * step];
    }
    var leave = vec4<f32>(0.0);
    var leave5 = 0.0;
    let j_out = i - radius - 1;
    if (j_out >= 0) {
      leave = sums[base + u32(j_out) * step];
      leave5 = sums5[base + u32(j_out) * step];
    }
    acc += enter - leave;
    acc5 += enter5 - leave5;
    cc_sum += correlate(base + u32(i) * step, acc, acc5);
  }
  partials[t] = vec4<f32>(cc_sum, 0.0, 0.0, 0.0);
}
