// Smoothness (l2 gradient) loss, backward: the gradient with respect to the
// field.
//
// Layout: flow and grad are [N, C, D, H, W] f32, read and written one quad
// (4 voxels of a row) at a time as in smoothness.wgsl.
// The loss is the sum over axes of weight_axis * sum of (f[x + e] - f[x])^2,
// weight_axis = 1 / (3 * count_axis). A sample f[x] enters the difference
// behind it (x - e, positive sign) and the one ahead of it (x + e, negative
// sign), so
//   grad[x] = upstream[0] * sum over axes of 2 * weight_axis *
//             ((f[x] - f[x - e]) [x - e inside] - (f[x + e] - f[x]) [x + e inside]).
// A neighbour outside the volume reads as f[x] itself, which makes its
// difference 0. Each invocation walks SEGMENT positions along D of a tile of
// TILE_H rows x TILE_Q quads and carries f[d - 1] and f[d] over from the
// previous step.
//
// Bindings: 1 flow (read; f32, or vec4<f32> when W % 4 == 0), 2 upstream
//   (read, f32; element 0 is the gradient of the loss), 3 grad (read_write;
//   same type as flow).
// Uniforms: total, depth, height, width, quads, segments, tiles_h, tiles_q
//   as in smoothness.wgsl; weight_d, weight_h, weight_w = 2 * weight_axis.
// Constants: SEGMENT, TILE_H, TILE_Q as in smoothness.wgsl; QUAD_IO =
//   generated functions load_flow(row, quad) and store_grad(row, quad,
//   value), which writes the lanes inside the row.
// Workgroup: WORKGROUP_SIZE x 1 x 1. Grid: ceil(total / WORKGROUP_SIZE)
//   workgroups, folded past 65,535.

const SEGMENT: u32 = {{SEGMENT}}u;
const TILE_H: u32 = {{TILE_H}}u;
const TILE_Q: u32 = {{TILE_Q}}u;
const TILE: u32 = TILE_H * TILE_Q;

{{QUAD_IO}}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = global_index(wid, nwg, lid);
  if (t >= params.total) {
    return;
  }
  let tile_q = t % params.tiles_q;
  var rest = t / params.tiles_q;
  let tile_h = rest % params.tiles_h;
  rest = rest / params.tiles_h;
  let segment = rest % params.segments;
  let volume = rest / params.segments;
  let h0 = tile_h * TILE_H;
  let q0 = tile_q * TILE_Q;
  let first = segment * SEGMENT;
  let last = min(first + SEGMENT, params.depth);
  let height = params.height;
  let upstream_value = upstream[0];

  var previous: array<vec4<f32>, TILE>;
  var current: array<vec4<f32>, TILE>;
  var next: array<vec4<f32>, TILE>;
  for (var k = 0u; k < TILE; k++) {
    let h = h0 + k / TILE_Q;
    let q = q0 + k % TILE_Q;
    if (h < height && q < params.quads) {
      current[k] = load_flow((volume * params.depth + first) * height + h, q);
      previous[k] = current[k];
      if (first > 0u) {
        previous[k] = load_flow((volume * params.depth + first - 1u) * height + h, q);
      }
    }
  }

  for (var d = first; d < last; d++) {
    let row_first = (volume * params.depth + d) * height;
    let has_next = d + 1u < params.depth;
    for (var k = 0u; k < TILE; k++) {
      let i = k / TILE_Q;
      let j = k % TILE_Q;
      let h = h0 + i;
      let q = q0 + j;
      if (h < height && q < params.quads) {
        let c = current[k];
        var ahead = c;
        if (has_next) {
          ahead = load_flow(row_first + height + h, q);
        }
        next[k] = ahead;
        var up = c;
        if (i > 0u) {
          up = current[k - TILE_Q];
        } else if (h > 0u) {
          up = load_flow(row_first + h - 1u, q);
        }
        var down = c;
        if (h + 1u < height) {
          if (i + 1u < TILE_H) {
            down = current[k + TILE_Q];
          } else {
            down = load_flow(row_first + h + 1u, q);
          }
        }
        // Voxel w - 1 of lane 0 and w + 1 of lane 3 come from the neighbouring quads.
        var left = c.x;
        if (j > 0u) {
          left = current[k - 1u].w;
        } else if (q > 0u) {
          left = load_flow(row_first + h, q - 1u).w;
        }
        var right = 0.0;
        if (j + 1u < TILE_Q) {
          right = current[k + 1u].x;
        } else if (q + 1u < params.quads) {
          right = load_flow(row_first + h, q + 1u).x;
        }
        let lanes_w = vec4<u32>(4u * q + 1u) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(params.width);
        let right_quad = select(c, vec4<f32>(c.yzw, right), lanes_w);
        // Differences first: they are small next to the values of a smooth field.
        let along_d = (c - previous[k]) - (ahead - c);
        let along_h = (c - up) - (down - c);
        let along_w = (c - vec4<f32>(left, c.xyz)) - (right_quad - c);
        let g = params.weight_d * along_d + params.weight_h * along_h + params.weight_w * along_w;
        store_grad(row_first + h, q, upstream_value * g);
      }
    }
    previous = current;
    current = next;
  }
}
