// One level of a fixed-order tree sum of vec4 rows, shared by the losses.
//
// Layout: x is [rows, count] vec4<f32>, row-major. Each workgroup sums one
// block of 4 * WORKGROUP_SIZE consecutive elements of one row. Invocation lid
// adds block elements lid, lid + WG, lid + 2 WG and lid + 3 WG as
// (e0 + e1) + (e2 + e3); a binary tree in workgroup memory then adds the
// WORKGROUP_SIZE results. Every addition happens in the same order on every
// run, so results are bitwise reproducible, and the float32 error grows with
// log2(count) rather than with count (pairwise summation).
//
// Bindings: 1 x (read, vec4<f32>), 2 partials (read_write, vec4<f32>):
//   [rows, blocks] block sums, written when scalar_output == 0;
//   3 scalars (read_write, f32): [rows, blocks] values dot(sum, weights),
//   written when scalar_output == 1 (the last pass of a loss).
// Uniforms: rows; count = elements per row; blocks = ceil(count / (4 WG));
//   scalar_output = 0 or 1; weights = the vec4 dotted with each block sum
//   in scalar mode (for example 1 / count for a mean).
// Workgroup: WORKGROUP_SIZE x 1 x 1 (a power of two), one workgroup per
//   block. Grid: rows * blocks workgroups, folded past 65,535.

var<workgroup> tree: array<vec4<f32>, WORKGROUP_SIZE>;

fn load(row_start: u32, index: u32) -> vec4<f32> {
  if (index >= params.count) {
    return vec4<f32>(0.0);
  }
  return x[row_start + index];
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  // The workgroup index is uniform, so this return keeps the barriers below
  // in uniform control flow.
  let group = workgroup_linear(wid, nwg);
  if (group >= params.rows * params.blocks) {
    return;
  }
  let row = group / params.blocks;
  let block = group % params.blocks;
  let row_start = row * params.count;
  let first = block * 4u * WORKGROUP_SIZE + lid;
  let e0 = load(row_start, first);
  let e1 = load(row_start, first + WORKGROUP_SIZE);
  let e2 = load(row_start, first + 2u * WORKGROUP_SIZE);
  let e3 = load(row_start, first + 3u * WORKGROUP_SIZE);
  tree[lid] = (e0 + e1) + (e2 + e3);
  workgroupBarrier();

  for (var half = WORKGROUP_SIZE / 2u; half > 0u; half = half / 2u) {
    if (lid < half) {
      tree[lid] = tree[lid] + tree[lid + half];
    }
    workgroupBarrier();
  }

  if (lid == 0u) {
    if (params.scalar_output == 1u) {
      scalars[group] = dot(tree[0], params.weights[0]);
    } else {
      partials[group] = tree[0];
    }
  }
}
