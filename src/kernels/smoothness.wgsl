// Smoothness (l2 gradient) loss, forward: partial sums of the squared
// forward differences of a field along D, H and W.
//
// Layout: flow is [N, C, D, H, W] f32, contiguous (for a displacement field
// C = 3, but any C works), read one quad (4 voxels of a row) at a time;
// row (volume, d, h) = (volume * D + d) * H + h, quads = ceil(W / 4).
// Each invocation walks SEGMENT positions along D of a tile of TILE_H rows
// x TILE_Q quads, carrying flow[d + 1] over as the next step's flow[d] and
// sharing neighbours inside the tile, and adds
//   (flow[d + 1, h, w] - flow[d, h, w])^2  where d + 1 < D,
//   (flow[d, h + 1, w] - flow[d, h, w])^2  where h + 1 < H,
//   (flow[d, h, w + 1] - flow[d, h, w])^2  where w + 1 < W
// into partials[t] = vec4(sum along D, sum along H, sum along W, 0). The
// loss, (sum_D / count_D + sum_H / count_H + sum_W / count_W) / 3, is formed
// by loss_sum's tree over the partials.
//
// Bindings: 1 flow (read; f32, or vec4<f32> when W % 4 == 0),
//   2 partials (read_write, vec4<f32>).
// Uniforms: total = N * C * segments * tiles_h * tiles_q invocations;
//   depth, height, width = D, H, W; quads; segments = ceil(D / SEGMENT);
//   tiles_h = ceil(H / TILE_H); tiles_q = ceil(quads / TILE_Q).
// Constants: SEGMENT, TILE_H, TILE_Q as above; LOAD_FLOW = generated
//   function load_flow(row, quad) (one vec4 load when W % 4 == 0, else up
//   to 4 f32 loads, lanes past W read as 0).
// Workgroup: WORKGROUP_SIZE x 1 x 1; neighbouring invocations take
//   neighbouring tiles of a row. Grid: ceil(total / WORKGROUP_SIZE)
//   workgroups, folded past 65,535.

const SEGMENT: u32 = {{SEGMENT}}u;
const TILE_H: u32 = {{TILE_H}}u;
const TILE_Q: u32 = {{TILE_Q}}u;
const TILE: u32 = TILE_H * TILE_Q;

{{LOAD_FLOW}}

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

  // Tile element k is row h0 + k / TILE_Q, quad q0 + k % TILE_Q.
  var current: array<vec4<f32>, TILE>;
  var next: array<vec4<f32>, TILE>;
  for (var k = 0u; k < TILE; k++) {
    let h = h0 + k / TILE_Q;
    let q = q0 + k % TILE_Q;
    if (h < height && q < params.quads) {
      current[k] = load_flow((volume * params.depth + first) * height + h, q);
    }
  }

  var sums = vec3<f32>(0.0);
  for (var d = first; d < last; d++) {
    let row_first = (volume * params.depth + d) * height;
    for (var k = 0u; k < TILE; k++) {
      let i = k / TILE_Q;
      let j = k % TILE_Q;
      let h = h0 + i;
      let q = q0 + j;
      if (h >= height || q >= params.quads) {
        continue;
      }
      let c = current[k];
      // Along W: voxel w + 1 of every lane, the last from the next quad.
      var right = 0.0;
      if (j + 1u < TILE_Q) {
        right = current[k + 1u].x;
      } else if (q + 1u < params.quads) {
        right = load_flow(row_first + h, q + 1u).x;
      }
      let lanes_w = vec4<u32>(4u * q + 1u) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(params.width);
      let dx = select(vec4<f32>(0.0), vec4<f32>(c.yzw, right) - c, lanes_w);
      sums.z += dot(dx, dx);
      // Along H. Lanes past W are 0 in both quads, so they add nothing.
      if (h + 1u < height) {
        var below: vec4<f32>;
        if (i + 1u < TILE_H) {
          below = current[k + TILE_Q];
        } else {
          below = load_flow(row_first + h + 1u, q);
        }
        let dy = below - c;
        sums.y += dot(dy, dy);
      }
      // Along D.
      if (d + 1u < params.depth) {
        next[k] = load_flow(row_first + height + h, q);
        let dz = next[k] - c;
        sums.x += dot(dz, dz);
      }
    }
    current = next;
  }
  partials[t] = vec4<f32>(sums, 0.0);
}
