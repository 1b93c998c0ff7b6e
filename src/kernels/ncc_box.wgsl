// Local NCC: box sum of a five-channel quad volume along H with zero
// padding. The forward pass runs it on the moments from ncc_moments; the
// backward pass runs it on the coefficients from ncc_cc.
//
// Layout: x and out are quad volumes (see ncc_moments): element
// ((row * quads + quad) * 5 + channel) with row = volume * D * H + d * H + h.
// The pass sees the rows as [outer = N * C * D, length = H] and sums
//   out[.., h, quad] = sum of x[.., h + j, quad] for |j| <= radius,
// x = 0 outside the volume, for each of the five channels.
// Sliding window with a restart every SEGMENT positions, as in ncc_moments.
//
// Bindings: 1 x (read, vec4<f32>), 2 out (read_write, vec4<f32>).
// Uniforms: total = outer * segments * quads invocations; outer, length,
//   quads; segments = ceil(length / SEGMENT); radius = (window along H - 1) / 2.
// Constants: SEGMENT = positions per invocation.
// Workgroup: WORKGROUP_SIZE x 1 x 1; neighbouring invocations take
//   neighbouring quads. Grid: ceil(total / WORKGROUP_SIZE) workgroups,
//   folded past 65,535.

const SEGMENT: u32 = {{SEGMENT}}u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = global_index(wid, nwg, lid);
  if (t >= params.total) {
    return;
  }
  let quad = t % params.quads;
  let rest = t / params.quads;
  let segment = rest % params.segments;
  let line = rest / params.segments;
  // Element of (line, position, quad, channel 0); positions are 5 * quads apart.
  let base = (line * params.length * params.quads + quad) * 5u;
  let step = params.quads * 5u;
  let length = i32(params.length);
  let radius = i32(params.radius);
  let first = i32(segment * SEGMENT);
  let last = min(first + i32(SEGMENT), length);

  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  var a4 = vec4<f32>(0.0);
  for (var j = max(first - radius, 0); j <= min(first + radius, length - 1); j++) {
    let k = base + u32(j) * step;
    a0 += x[k];
    a1 += x[k + 1u];
    a2 += x[k + 2u];
    a3 += x[k + 3u];
    a4 += x[k + 4u];
  }
  for (var i = first; i < last; i++) {
    if (i > first) {
      let j_in = i + radius;
      if (j_in < length) {
        let k = base + u32(j_in) * step;
        a0 += x[k];
        a1 += x[k + 1u];
        a2 += x[k + 2u];
        a3 += x[k + 3u];
        a4 += x[k + 4u];
      }
      let j_out = i - radius - 1;
      if (j_out >= 0) {
        let k = base + u32(j_out) * step;
        a0 -= x[k];
        a1 -= x[k + 1u];
        a2 -= x[k + 2u];
        a3 -= x[k + 3u];
        a4 -= x[k + 4u];
      }
    }
    let o = base + u32(i) * step;
    out[o] = a0;
    out[o + 1u] = a1;
    out[o + 2u] = a2;
    out[o + 3u] = a3;
    out[o + 4u] = a4;
  }
}
