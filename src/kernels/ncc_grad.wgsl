// Local NCC, backward pass 2 of 2: the last box sum (along D) of the
// coefficients from ncc_cc, and the gradients of the loss with respect to
// both volumes.
//
// Layout: a, b, grad_a, grad_b are [N, C, D, H, W] f32; coefficients is the
// quad volume (see ncc_moments) of the ncc_cc coefficients, already
// box-summed along W (by ncc_cc) and H (by ncc_box).
// Why a box sum: a sample a[x] enters the window sums Sa, Saa and Sab of
// every window that contains x, and the windows containing x are exactly the
// positions of the (symmetric) window around x. After the box sum along D,
// the five channels at x hold Ba = box(dcc/dSa), Bb, Baa, Bbb and Bab, and
//   d(sum of cc)/da[x] = Ba + 2 a[x] Baa + b[x] Bab
//   d(sum of cc)/db[x] = Bb + 2 b[x] Bbb + a[x] Bab.
// The loss is -mean(cc), so both are scaled by upstream[0] * scale with
// scale = -1 / (number of voxels of a).
// Sliding window along D with a restart every SEGMENT positions, as in
// ncc_moments.
//
// Bindings: 1 coefficients (read, vec4<f32>), 2 a (read; f32, or vec4<f32>
//   when W % 4 == 0), 3 b (same type), 4 upstream (read, f32; element 0 is
//   the gradient of the loss), 5 grad_a (read_write; same type as a),
//   6 grad_b (same).
// Uniforms: total, depth, height, width, quads, segments, radius as in
//   ncc_moments; scale as above.
// Constants: SEGMENT = positions per invocation; QUAD_IO = generated
//   functions load_a, load_b (as in ncc_moments), store_grad_a and
//   store_grad_b(row, quad, value), which write the lanes inside the row.
// Workgroup: WORKGROUP_SIZE x 1 x 1; neighbouring invocations take
//   neighbouring quads. Grid: ceil(total / WORKGROUP_SIZE) workgroups,
//   folded past 65,535.

const SEGMENT: u32 = {{SEGMENT}}u;

{{QUAD_IO}}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = global_index(wid, nwg, lid);
  if (t >= params.total) {
    return;
  }
  let quad = t % params.quads;
  var rest = t / params.quads;
  let h = rest % params.height;
  rest = rest / params.height;
  let segment = rest % params.segments;
  let volume = rest / params.segments;
  let row_first = volume * params.depth * params.height + h;
  let row_step = params.height;
  // Element of (row_first, quad, channel 0); D neighbours are 5 * quads * H apart.
  let base = (row_first * params.quads + quad) * 5u;
  let step = row_step * params.quads * 5u;
  let depth = i32(params.depth);
  let radius = i32(params.radius);
  let first = i32(segment * SEGMENT);
  let last = min(first + i32(SEGMENT), depth);
  let factor = upstream[0] * params.scale;

  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  var a4 = vec4<f32>(0.0);
  for (var j = max(first - radius, 0); j <= min(first + radius, depth - 1); j++) {
    let k = base + u32(j) * step;
    a0 += coefficients[k];
    a1 += coefficients[k + 1u];
    a2 += coefficients[k + 2u];
    a3 += coefficients[k + 3u];
    a4 += coefficients[k + 4u];
  }
  for (var i = first; i < last; i++) {
    if (i > first) {
      let j_in = i + radius;
      if (j_in < depth) {
        let k = base + u32(j_in) * step;
        a0 += coefficients[k];
        a1 += coefficients[k + 1u];
        a2 += coefficients[k + 2u];
        a3 += coefficients[k + 3u];
        a4 += coefficients[k + 4u];
      }
      let j_out = i - radius - 1;
      if (j_out >= 0) {
        let k = base + u32(j_out) * step;
        a0 -= coefficients[k];
        a1 -= coefficients[k + 1u];
        a2 -= coefficients[k + 2u];
        a3 -= coefficients[k + 3u];
        a4 -= coefficients[k + 4u];
      }
    }
    let row = row_first + u32(i) * row_step;
    let va = load_a(row, quad);
    let vb = load_b(row, quad);
    store_grad_a(row, quad, factor * (a0 + 2.0 * va * a2 + vb * a4));
    store_grad_b(row, quad, factor * (a1 + 2.0 * vb * a3 + va * a4));
  }
}
