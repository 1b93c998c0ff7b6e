// Soft Dice loss, forward pass 1: per-chunk partial sums of p * t, p and t
// for every (sample, class) row, p from probs and t from truth (the target;
// `target` is a reserved word in WGSL).
//
// Layout: probs and truth are [N, K, D, H, W] f32, contiguous, so each of
// the rows = N * K rows of voxels = D * H * W values is contiguous.
// Invocation t takes row t / chunks and its chunk t % chunks, the CHUNK
// consecutive voxels from (t % chunks) * CHUNK (fewer in the last chunk),
// and writes partials[t] = vec4(sum p * t, sum p, sum t, 0) summed in order.
// loss_sum then adds each row's chunks with a fixed-order tree.
//
// Bindings: 1 probs (read, f32), 2 truth (read, f32),
//   3 partials (read_write, vec4<f32>): [rows, chunks].
// Uniforms: total = rows * chunks; voxels = D * H * W;
//   chunks = ceil(voxels / CHUNK).
// Constants: CHUNK = voxels per invocation.
// Workgroup: WORKGROUP_SIZE x 1 x 1. Grid: ceil(total / WORKGROUP_SIZE)
//   workgroups, folded past 65,535.

const CHUNK: u32 = {{CHUNK}}u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = global_index(wid, nwg, lid);
  if (t >= params.total) {
    return;
  }
  let row = t / params.chunks;
  let first = (t % params.chunks) * CHUNK;
  let last = min(first + CHUNK, params.voxels);
  let offset = row * params.voxels;
  var sums = vec3<f32>(0.0);
  for (var v = first; v < last; v++) {
    let p = probs[offset + v];
    let q = truth[offset + v];
    sums += vec3<f32>(p * q, p, q);
  }
  partials[t] = vec4<f32>(sums, 0.0);
}
