// Normalisation statistics, pass 1: mean and sum of squared deviations of
// each piece of a row, the partials that norm_merge combines.
//
// Layout: x is [N, C, D, H, W] f32 (or any contiguous tensor) read as
// [rows, length]. A row is one (n, c) volume for instance, group and batch
// norm, and one normalised slice for layer norm. Row r belongs to
// statistic stat(r) = (r / rows_per_stat) % stat_count: consecutive blocks
// of rows_per_stat rows (C / groups channels for group norm) share a
// statistic, and the pattern repeats every rows_per_stat * stat_count
// rows (over N for batch norm).
// Each invocation takes piece k of row r (chunk_size elements from
// k * chunk_size) and computes the piece's mean, then the sum of squared
// deviations from it (two passes over data in cache, so no cancellation),
// and writes vec4(mean, m2, count, 0) in statistic order:
//   partials[(stat * rows_of_stat + j) * chunks + k],
// j = (r / (rows_per_stat * stat_count)) * rows_per_stat + r % rows_per_stat
// being the row's rank among the rows_of_stat = rows / stat_count rows of
// its statistic. Each statistic's partials are then contiguous.
//
// Bindings: 1 x (read, f32), 2 partials (read_write, vec4<f32>).
// Uniforms: rows; length = elements per row; chunks = ceil(length /
//   chunk_size); chunk_size; rows_per_stat; stat_count.
// Workgroup: WORKGROUP_SIZE x 1 x 1, one invocation per (row, piece).
// Grid: ceil(rows * chunks / WORKGROUP_SIZE), folded past 65,535.

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = global_index(wid, nwg, lid);
  if (t >= params.rows * params.chunks) {
    return;
  }
  let row = t / params.chunks;
  let piece = t % params.chunks;
  let offset = piece * params.chunk_size;
  let count = min(params.chunk_size, params.length - offset);
  let start = row * params.length + offset;
  let end = start + count;

  var total = 0.0;
  for (var i = start; i < end; i++) {
    total += x[i];
  }
  let mean = total / f32(count);
  var m2 = 0.0;
  for (var i = start; i < end; i++) {
    let deviation = x[i] - mean;
    m2 += deviation * deviation;
  }

  let stat = (row / params.rows_per_stat) % params.stat_count;
  let period = params.rows_per_stat * params.stat_count;
  let rank = (row / period) * params.rows_per_stat + row % params.rows_per_stat;
  let rows_of_stat = params.rows / params.stat_count;
  partials[(stat * rows_of_stat + rank) * params.chunks + piece] =
      vec4<f32>(mean, m2, f32(count), 0.0);
}
