// Soft Dice loss, forward pass 1: per-chunk partial sums of p * t, p and t
// for every (sample, class) row, p from probs and t from truth (the target;
// `target` is a reserved word in WGSL).
//
// Layout: probs and truth are [N, K, D, H, W] f32, contiguous, so each of
// the rows = N * K rows of width = D * H * W voxels is contiguous. Rows are
// read in quads of 4 voxels, quads = ceil(width / 4) per row (see
// quad_io.ts; lanes past the row read as 0).
// Invocation t takes row t / chunks and its chunk t % chunks, the CHUNK
// consecutive quads from (t % chunks) * CHUNK (fewer in the last chunk), and
// writes partials[t] = vec4(sum p * t, sum p, sum t, 0), each summed per
// lane in order and then across the four lanes. loss_sum then adds each
// row's chunks with a fixed-order tree.
//
// Bindings: 1 probs (read; f32, or vec4<f32> when D * H * W % 4 == 0),
//   2 truth (same type), 3 partials (read_write, vec4<f32>): [rows, chunks].
// Uniforms: total = rows * chunks; width; quads; chunks = ceil(quads / CHUNK).
// Constants: CHUNK = quads per invocation; LOAD_INPUTS = generated
//   functions load_probs(row, quad) and load_truth(row, quad).
// Workgroup: WORKGROUP_SIZE x 1 x 1. Grid: ceil(total / WORKGROUP_SIZE)
//   workgroups, folded past 65,535.

const CHUNK: u32 = {{CHUNK}}u;

{{LOAD_INPUTS}}

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
  let last = min(first + CHUNK, params.quads);
  var intersection = vec4<f32>(0.0);
  var sum_p = vec4<f32>(0.0);
  var sum_t = vec4<f32>(0.0);
  for (var q = first; q < last; q++) {
    let p = load_probs(row, q);
    let truth_quad = load_truth(row, q);
    intersection += p * truth_quad;
    sum_p += p;
    sum_t += truth_quad;
  }
  let ones = vec4<f32>(1.0);
  partials[t] = vec4<f32>(dot(intersection, ones), dot(sum_p, ones), dot(sum_t, ones), 0.0);
}
