// Local NCC, forward pass 1 of 3: the five moments a, b, a^2, b^2 and ab of
// the two volumes, box-summed along one axis (W) with zero padding.
//
// Layout: a and b are [N, C, D, H, W] f32, contiguous. The pass sees them as
// [outer, length, inner] with the summed axis in the middle: for the W axis
// outer = N*C*D*H, length = W, inner = 1. Outputs have the shape of a:
//   sums[i]    = vec4(box(a), box(b), box(a*a), box(b*b))[i]
//   sums_ab[i] = box(a*b)[i]
// where box(f)[.., x, ..] = sum of f[.., x + j, ..] for |j| <= radius, with
// f read as 0 outside the volume (a "same" convolution with a ones filter).
//
// Sliding window: each invocation covers SEGMENT consecutive positions of one
// line. It adds the first window directly, then moves one position at a time,
// adding the sample that enters and subtracting the one that leaves. The
// restart every SEGMENT positions bounds the rounding error of the running sum
// (at most 2 * radius + 1 + 2 * (SEGMENT - 1) roundings per output) however
// long the axis is, while the work per output stays near two samples.
//
// Bindings: 1 a (read, f32), 2 b (read, f32), 3 sums (read_write, vec4<f32>),
//   4 sums_ab (read_write, f32).
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
  var acc_ab = 0.0;
  for (var j = max(first - radius, 0); j <= min(first + radius, length - 1); j++) {
    let va = a[base + u32(j) * step];
    let vb = b[base + u32(j) * step];
    acc += vec4<f32>(va, vb, va * va, vb * vb);
    acc_ab += va * vb;
  }
  sums[base + u32(first) * step] = acc;
  sums_ab[base + u32(first) * step] = acc_ab;

  for (var i = first + 1; i < last; i++) {
    var enter = vec4<f32>(0.0);
    var enter_ab = 0.0;
    let j_in = i + radius;
    if (j_in < length) {
      let va = a[base + u32(j_in) * step];
      let vb = b[base + u32(j_in) * step];
      enter = vec4<f32>(va, vb, va * va, vb * vb);
      enter_ab = va * vb;
    }
    var leave = vec4<f32>(0.0);
    var leave_ab = 0.0;
    let j_out = i - radius - 1;
    if (j_out >= 0) {
      let va = a[base + u32(j_out) * step];
      let vb = b[base + u32(j_out) * step];
      leave = vec4<f32>(va, vb, va * va, vb * vb);
      leave_ab = va * vb;
    }
    acc += enter - leave;
    acc_ab += enter_ab - leave_ab;
    sums[base + u32(i) * step] = acc;
    sums_ab[base + u32(i) * step] = acc_ab;
  }
}
