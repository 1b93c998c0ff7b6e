// Local NCC, forward pass 1 of 3: the five moments a, b, a^2, b^2 and ab of
// two volumes, box-summed along D with zero padding.
//
// Layout: a and b are [N, C, D, H, W] f32, contiguous. The output is a quad
// volume: every row of W voxels is cut into quads = ceil(W / 4) quads of 4
// consecutive voxels (lanes past W are 0), and each quad stores its five
// channels as consecutive vec4s:
//   moments[((row * quads + quad) * 5 + channel)], row = (n * C + c) * D * H
//     + d * H + h, channels (a, b, a^2, b^2, ab) box-summed along D:
//   box(f)[d] = sum of f[d + j] for |j| <= radius, f = 0 outside the volume.
//
// Sliding window: each invocation covers SEGMENT consecutive positions along
// D of one quad column. It adds the first window directly, then moves one
// position at a time, adding the sample that enters and subtracting the one
// that leaves. Restarting every SEGMENT positions bounds the rounding error
// of the running sum (at most 2 * radius + 1 + 2 * (SEGMENT - 1) roundings
// per output) however long the axis is.
//
// Bindings: 1 a (read; f32, or vec4<f32> when W % 4 == 0), 2 b (same type),
//   3 moments (read_write, vec4<f32>).
// Uniforms: total = N * C * segments * H * quads invocations; depth,
//   height, width = D, H, W; quads; segments = ceil(D / SEGMENT);
//   radius = (window along D - 1) / 2.
// Constants: SEGMENT = positions per invocation; LOAD_INPUTS = generated
//   functions load_a(row, quad) and load_b(row, quad) returning a quad (one
//   vec4 load when W % 4 == 0, else up to 4 f32 loads).
// Workgroup: WORKGROUP_SIZE x 1 x 1; neighbouring invocations take
//   neighbouring quads. Grid: ceil(total / WORKGROUP_SIZE) workgroups,
//   folded past 65,535.

const SEGMENT: u32 = {{SEGMENT}}u;

struct Moments {
  a: vec4<f32>,
  b: vec4<f32>,
  aa: vec4<f32>,
  bb: vec4<f32>,
  ab: vec4<f32>,
}

{{LOAD_INPUTS}}

fn moments_at(row: u32, quad: u32) -> Moments {
  let va = load_a(row, quad);
  let vb = load_b(row, quad);
  return Moments(va, vb, va * va, vb * vb, va * vb);
}

fn add(x: Moments, y: Moments) -> Moments {
  return Moments(x.a + y.a, x.b + y.b, x.aa + y.aa, x.bb + y.bb, x.ab + y.ab);
}

fn subtract(x: Moments, y: Moments) -> Moments {
  return Moments(x.a - y.a, x.b - y.b, x.aa - y.aa, x.bb - y.bb, x.ab - y.ab);
}

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
  // Row of voxel (volume, d, h) is volume * D * H + d * H + h.
  let row_first = volume * params.depth * params.height + h;
  let row_step = params.height;
  let depth = i32(params.depth);
  let radius = i32(params.radius);
  let first = i32(segment * SEGMENT);
  let last = min(first + i32(SEGMENT), depth);

  let zero = Moments(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0),
                     vec4<f32>(0.0));
  var acc = zero;
  for (var j = max(first - radius, 0); j <= min(first + radius, depth - 1); j++) {
    acc = add(acc, moments_at(row_first + u32(j) * row_step, quad));
  }
  for (var i = first; i < last; i++) {
    if (i > first) {
      var enter = zero;
      if (i + radius < depth) {
        enter = moments_at(row_first + u32(i + radius) * row_step, quad);
      }
      var leave = zero;
      if (i - radius - 1 >= 0) {
        leave = moments_at(row_first + u32(i - radius - 1) * row_step, quad);
      }
      acc = add(acc, subtract(enter, leave));
    }
    let out = ((row_first + u32(i) * row_step) * params.quads + quad) * 5u;
    moments[out] = acc.a;
    moments[out + 1u] = acc.b;
    moments[out + 2u] = acc.aa;
    moments[out + 3u] = acc.bb;
    moments[out + 4u] = acc.ab;
  }
}
