// Normalisation, backward: partial sums of the weight and bias gradients
// when the affine index runs along the normalised axis (LayerNorm2d's
// channels, layer norm's positions).
//
// Layout: x and upstream are [N, C, D, H, W] f32 (or any contiguous
// tensor) read as [outer, channels, inner] like norm_fused: the element
// (a, b, c) sits at (a * channels + b) * inner + c, takes weight[b], and
// its statistic is stats[m], m = a * inner + c. With xhat = (x - mean) *
// rstd, invocation (piece p, channel b) sums over the piece_size
// statistics m in [p * piece_size, (p + 1) * piece_size)
//   weight_partials[p * channels + b] = sum upstream * xhat,
//   bias_partials[p * channels + b] = sum upstream,
// and the caller reduces the [pieces, channels] partials over pieces with
// reduce.ts (fixed order, no atomics).
//
// Bindings: 1 x (read, f32), 2 upstream (read, f32), 3 stats (read,
//   vec4<f32>), 4 weight_partials (read_write, f32), 5 bias_partials
//   (read_write, f32).
// Uniforms: outer; channels; inner; pieces = ceil(outer * inner /
//   piece_size); piece_size.
// Workgroup: WORKGROUP_SIZE x 1 x 1; neighbouring invocations take
//   neighbouring channels. Grid: ceil(pieces * channels / WORKGROUP_SIZE),
//   folded past 65,535.

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = global_index(wid, nwg, lid);
  if (t >= params.pieces * params.channels) {
    return;
  }
  let b = t % params.channels;
  let piece = t / params.channels;
  let first = piece * params.piece_size;
  let last = min(first + params.piece_size, params.outer * params.inner);

  var a = first / params.inner;
  var c = first % params.inner;
  var sum_upstream_xhat = 0.0;
  var sum_upstream = 0.0;
  for (var m = first; m < last; m++) {
    let i = (a * params.channels + b) * params.inner + c;
    let stat = stats[m];
    let g = upstream[i];
    sum_upstream_xhat += g * (x[i] - stat.x) * stat.y;
    sum_upstream += g;
    c += 1u;
    if (c == params.inner) {
      c = 0u;
      a += 1u;
    }
  }
  weight_partials[t] = sum_upstream_xhat;
  bias_partials[t] = sum_upstream;
}
