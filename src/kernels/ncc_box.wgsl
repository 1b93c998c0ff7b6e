// Local NCC: box sum of five channels along one axis with zero padding. The
// forward pass runs it along H on the moments from ncc_moments; the backward
// pass runs it along W and then H on the coefficients from ncc_cc.
//
// Layout: x and out are [N, C, D, H, W] volumes, contiguous, seen as
// [outer, length, inner] with the summed axis in the middle (H: outer =
// N*C*D, length = H, inner = W; W: outer = N*C*D*H, length = W, inner = 1).
// Four channels travel as one vec4 (x, out) and the fifth as f32 (x5, out5):
//   out[.., i, ..] = sum of x[.., i + j, ..] for |j| <= radius, x read as 0
//   outside the volume; the same for x5 and out5.
// Sliding window with a restart every SEGMENT positions, as in ncc_moments.
//
// Bindings: 1 x (read, vec4<f32>), 2 x5 (read, f32),
//   3 out (read_write, vec4<f32>), 4 out5 (read_write, f32).
// Uniforms: total = outer * segments * inner invocations; outer, length,
//   inner as above; segments = ceil(length / SEGMENT); radius = window / 2.
// Constants: SEGMENT = positions per invocation.
// Workgroup: WORKGROUP_SIZE x 1 x 1; neighbouring invocations take
//   neighbouring inner positions. Grid: ceil(total / WORKGROUP_SIZE)
//   workgroups, folded past 65,535.

const SEGMENT: u32 = {{SEGMENT}}u;

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
    acc += x[base + u32(j) * step];
    acc5 += x5[base + u32(j) * step];
  }
  out[base + u32(first) * step] = acc;
  out5[base + u32(first) * step] = acc5;

  for (var i = first + 1; i < last; i++) {
    var enter = vec4<f32>(0.0);
    var enter5 = 0.0;
    let j_in = i + radius;
    if (j_in < length) {
      enter = x[base + u32(j_in) * step];
      enter5 = x5[base + u32(j_in) * step];
    }
    var leave = vec4<f32>(0.0);
    var leave5 = 0.0;
    let j_out = i - radius - 1;
    if (j_out >= 0) {
      leave = x[base + u32(j_out) * step];
      leave5 = x5[base + u32(j_out) * step];
    }
    acc += enter - leave;
    acc5 += enter5 - leave5;
    out[base + u32(i) * step] = acc;
    out5[base + u32(i) * step] = acc5;
  }
}
