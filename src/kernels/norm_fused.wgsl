// Normalisation over a short strided axis, statistics and output in one
// kernel: SAM's LayerNorm2d (mean and variance over C at every position)
// and layer norm over at most normOptions.fusedLimit trailing elements.
//
// Layout: x and out are [N, C, D, H, W] f32 (or any contiguous tensor)
// read as [outer, channels, inner]; the statistic of position (a, s) is
// taken over the channels elements x[(a * channels + c) * inner + s].
// LayerNorm2d uses [N, C, D * H * W]; layer norm uses [rows, length, 1].
// Each invocation owns one position: it sums the channel values for the
// mean, sums the squared deviations for the biased variance (two passes,
// no cancellation), then writes
//   out = (x - mean) * rstd * weight[c] + bias[c], rstd = 1 / sqrt(var + eps)
// and stats[a * inner + s] = vec4(mean, rstd, var, channels).
// Neighbouring invocations take neighbouring s, so for inner > 1 their
// loads are adjacent.
//
// Bindings: 1 x (read, f32), 2 weight (read, f32), 3 bias (read, f32;
//   placeholders unless has_weight / has_bias is 1), 4 out (read_write,
//   f32), 5 stats (read_write, vec4<f32>).
// Uniforms: outer; channels; inner; has_weight; has_bias; eps; run_length =
//   consecutive positions per invocation.
// Workgroup: WORKGROUP_SIZE x 1 x 1, one invocation per run of run_length
//   positions (llvmpipe pays a fixed cost per invocation; GPUs take
//   run_length 1). Grid: ceil(outer * inner / (run_length *
//   WORKGROUP_SIZE)), folded past 65,535.

fn normalize_position(t: u32) {
  let a = t / params.inner;
  let s = t % params.inner;
  let start = a * params.channels * params.inner + s;
  let step = params.inner;

  var total = 0.0;
  for (var c = 0u; c < params.channels; c++) {
    total += x[start + c * step];
  }
  let mean = total / f32(params.channels);
  var m2 = 0.0;
  for (var c = 0u; c < params.channels; c++) {
    let deviation = x[start + c * step] - mean;
    m2 += deviation * deviation;
  }
  let variance = m2 / f32(params.channels);
  let rstd = inverseSqrt(variance + params.eps);

  for (var c = 0u; c < params.channels; c++) {
    var w = 1.0;
    if (params.has_weight == 1u) {
      w = weight[c];
    }
    var b = 0.0;
    if (params.has_bias == 1u) {
      b = bias[c];
    }
    let i = start + c * step;
    out[i] = (x[i] - mean) * (rstd * w) + b;
  }
  stats[t] = vec4<f32>(mean, rstd, variance, f32(params.channels));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let first = global_index(wid, nwg, lid) * params.run_length;
  let end = min(first + params.run_length, params.outer * params.inner);
  for (var t = first; t < end; t++) {
    normalize_position(t);
  }
}
