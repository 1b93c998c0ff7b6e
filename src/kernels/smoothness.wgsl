// Smoothness (l2 gradient) loss, forward: partial sums of the squared
// forward differences of a field along D, H and W.
//
// Layout: flow is [N, C, D, H, W] f32, contiguous (for a displacement field
// C = 3, but any C works), seen as [outer = N*C, D, plane = H*W].
// Each invocation walks SEGMENT consecutive positions along D of one (h, w)
// column, carrying flow[d + 1] over as the next step's flow[d], and adds
//   (flow[d + 1, h, w] - flow[d, h, w])^2  where d + 1 < D,
//   (flow[d, h + 1, w] - flow[d, h, w])^2  where h + 1 < H,
//   (flow[d, h, w + 1] - flow[d, h, w])^2  where w + 1 < W,
// into partials[t] = vec4(sum along D, sum along H, sum along W, 0). The
// loss, (sum_D / count_D + sum_H / count_H + sum_W / count_W) / 3, is formed
// by loss_sum's tree over the partials.
//
// Bindings: 1 flow (read, f32), 2 partials (read_write, vec4<f32>).
// Uniforms: total = outer * segments * plane invocations; depth = D,
//   height = H, width = W; segments = ceil(D / SEGMENT).
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
  let has_h = y + 1u < params.height;
  let has_w = x + 1u < params.width;
  let first = segment * SEGMENT;
  let last = min(first + SEGMENT, params.depth);

  var sums = vec3<f32>(0.0);
  var index = (p * params.depth + first) * plane + q;
  var current = flow[index];
  for (var z = first; z < last; z++) {
    if (has_h) {
      let dy = flow[index + params.width] - current;
      sums.y += dy * dy;
    }
    if (has_w) {
      let dx = flow[index + 1u] - current;
      sums.z += dx * dx;
    }
    if (z + 1u < params.depth) {
      let next = flow[index + plane];
      let dz = next - current;
      sums.x += dz * dz;
      current = next;
    }
    index += plane;
  }
  partials[t] = vec4<f32>(sums, 0.0);
}
