// upsample3d, backward for both modes, one axis per launch. The forward
// pass is separable, so its transpose is too: the host runs this kernel
// three times (W, then H, then D), and each pass sums the upstream
// gradient along one axis onto that axis's input positions. Each element
// gathers from the outputs that read it, so no two invocations write one
// element and no atomics are needed. The sums run in a fixed order, so
// results repeat bitwise. At scale 2 a pass reads about 4 values per
// element it writes, where a single 3D gather read 64.
//
// Layout: upstream is [outer, from_len, inner] f32 and grad is [outer,
// to_len, inner]. The reduced axis goes from the output length to the
// input length. It sits between `outer` (the volumes and the axes before
// it) and `inner` (the axes after it, already reduced by earlier passes).
// The table holds three entries per input position i of the axis, at
// spans + 3 i. The first is the first output position that reads i. The
// second is the count of consecutive positions from there that may read
// it (the source index never decreases with the output position, so the
// readers are contiguous). The third is the offset of the readers'
// weights. Reader o reads i along the axis with the weight
//   (first(o) == i) * (1 - weight(o)) + (second(o) == i) * weight(o),
// rounded in float32 as upsample_linear rounds it (1 for nearest).
//
// Bindings: 1 upstream (read, f32), 2 table (read, u32), 3 grad
//   (read_write, f32).
// Uniforms: total = outer * to_len * inner elements of grad; run_length
//   = consecutive elements per invocation; from_len, to_len, inner; spans =
//   offset of the axis's spans in the table.
// Workgroup: WORKGROUP_SIZE x 1 x 1, one invocation per run of run_length
//   elements. Grid: ceil(total / (run_length * WORKGROUP_SIZE)), folded
//   past 65,535.

// (first reader, reader count, offset of the readers' weights) of input i.
fn span(i: u32) -> vec3<u32> {
  let at = params.spans + 3u * i;
  return vec3<u32>(table[at], table[at + 1u], table[at + 2u]);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = global_index(wid, nwg, lid);
  let begin = t * params.run_length;
  if (begin >= params.total) {
    return;
  }
  let stop = min(begin + params.run_length, params.total);
  let inner = params.inner;
  // Position of `begin` as (o, i, n); the loop then steps it with carries.
  var n = begin % inner;
  var i = (begin / inner) % params.to_len;
  var o = begin / (inner * params.to_len);
  for (var e = begin; e < stop; e++) {
    let s = span(i);
    var at = (o * params.from_len + s.x) * inner + n;
    var total = 0.0;
    for (var k = 0u; k < s.y; k++) {
      total += bitcast<f32>(table[s.z + k]) * upstream[at];
      at += inner;
    }
    grad[e] = total;
    n++;
    if (n == inner) {
      n = 0u;
      i++;
      if (i == params.to_len) {
        i = 0u;
        o++;
      }
    }
  }
}
