// Smoothness (l2 gradient) loss, backward: the gradient with respect to the
// field.
//
// Layout: flow and grad are [N, C, D, H, W] f32, contiguous, seen as
// [outer = N*C, D, plane = H*W].
// The loss is sum over axes of weight_axis * sum (f[x + e_axis] - f[x])^2,
// weight_axis = 1 / (3 * count_axis). A sample f[x] enters the difference
// behind it (x - e, positive sign) and the one ahead of it (x + e, negative
// sign), so
//   grad[x] = upstream[0] * sum over axes of 2 * weight_axis *
//             ((f[x] - f[x - e]) [x - e inside] - (f[x + e] - f[x]) [x + e inside]).
// Each invocation walks SEGMENT positions along D of one (h, w) column and
// carries f[d - 1] and f[d] over from the previous step.
//
// Bindings: 1 flow (read, f32), 2 upstream (read, f32; element 0 is the
//   gradient of the loss), 3 grad (read_write, f32).
// Uniforms: total = outer * segments * plane invocations; depth = D,
//   height = H, width = W; segments = ceil(D / SEGMENT); weight_d, weight_h,
//   weight_w = 2 * weight_axis as above.
// Constants: SEGMENT = positions along D per invocation.
// Workgroup: WORKGROUP_SIZE x 1 x 1; neighbouring invocations take
//   neighbouring w. Grid: ceil(total / WORKGROUP_SIZE) workgroups, folded
//   past 65,535.

const SEGMENT: u32 = {{SEGMENT}}u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = global_index(wid, nwg, lid);
  if (t >= params.total) {
    return;
  }
  let plane = params.height * params.width;
  let q = t % plane;
  let rest = t / plane;
  let segment = rest % params.segments;
  let p = rest / params.segments;
  let y = q / params.width;
  let x = q % params.width;
  let first = segment * SEGMENT;
  let last = min(first + SEGMENT, params.depth);
  let upstream_value = upstream[0];

  var index = (p * params.depth + first) * plane + q;
  var current = flow[index];
  var previous = current;
  if (first > 0u) {
    previous = flow[index - plane];
  }
  for (var z = first; z < last; z++) {
    var next = current;
    if (z + 1u < params.depth) {
      next = flow[index + plane];
    }
    // Differences that do not exist are zero: a missing neighbour reads as
    // the sample itself.
    var up = current;
    var down = current;
    if (y > 0u) {
      up = flow[index - params.width];
    }
    if (y + 1u < params.height) {
      down = flow[index + params.width];
    }
    var left = current;
    var right = current;
    if (x > 0u) {
      left = flow[index - 1u];
    }
    if (x + 1u < params.width) {
      right = flow[index + 1u];
    }
    let g = params.weight_d * ((current - previous) - (next - current)) +
            params.weight_h * ((current - up) - (down - current)) +
            params.weight_w * ((current - left) - (right - current));
    grad[index] = upstream_value * g;
    previous = current;
    current = next;
    index += plane;
  }
}
