// Normalisation statistics, pass 2: merges the piece partials of each
// statistic, block by block, until one remains.
//
// Layout: partials_in is [stat_count, count] vec4<f32>(mean, m2, n, 0) as
// norm_stats writes them (m2 = sum of squared deviations from the mean of
// the n elements). Each invocation merges block_size consecutive partials
// of one statistic in order with Chan et al.'s pairwise update
//   delta = mean_b - mean_a, n = n_a + n_b,
//   mean = mean_a + delta * n_b / n,
//   m2 = m2_a + m2_b + delta^2 * n_a * n_b / n,
// which adds only non-negative terms to m2, so the variance cannot go
// negative. The caller repeats the pass until blocks == 1; the order of
// every merge is fixed, so results are bitwise reproducible.
// With finish == 1 (the last pass) it writes the statistic as
//   vec4(mean, 1 / sqrt(var + eps), var, n), var = m2 / n (biased),
// otherwise the merged partial vec4(mean, m2, n, 0).
//
// Bindings: 1 partials_in (read, vec4<f32>), 2 partials_out (read_write,
//   vec4<f32>): [stat_count, blocks].
// Uniforms: stat_count; count = partials per statistic; blocks =
//   ceil(count / block_size); block_size; finish = 0 or 1; eps.
// Workgroup: WORKGROUP_SIZE x 1 x 1, one invocation per (statistic, block).
// Grid: ceil(stat_count * blocks / WORKGROUP_SIZE), folded past 65,535.

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = global_index(wid, nwg, lid);
  if (t >= params.stat_count * params.blocks) {
    return;
  }
  let stat = t / params.blocks;
  let block = t % params.blocks;
  let first = block * params.block_size;
  let last = min(first + params.block_size, params.count);
  let base = stat * params.count;

  let start = partials_in[base + first];
  var mean = start.x;
  var m2 = start.y;
  var n = start.z;
  for (var i = first + 1u; i < last; i++) {
    let next = partials_in[base + i];
    let total = n + next.z;
    let delta = next.x - mean;
    mean += delta * (next.z / total);
    m2 += next.y + delta * delta * (n * next.z / total);
    n = total;
  }

  if (params.finish == 1u) {
    let variance = max(m2 / n, 0.0);
    partials_out[t] = vec4<f32>(mean, inverseSqrt(variance + params.eps), variance, n);
  } else {
    partials_out[t] = vec4<f32>(mean, m2, n, 0.0);
  }
}
