// Peak arithmetic probe for the benchmark ceilings: each invocation runs
// `iterations` rounds of 32 fma on vec4s, spread over 8 independent
// accumulators held in registers, so no round waits on the previous one
// and no memory is touched inside the loop. FLOPs = invocations *
// iterations * 32 * 4 * 2.
//
// Bindings: 1 out (read_write, vec4<f32>): one sum per invocation, written
//   so the compiler cannot drop the arithmetic.
// Uniforms: iterations = rounds per invocation; invocations = out's length.
// Workgroup: WORKGROUP_SIZE x 1 x 1. Grid: ceil(invocations /
//   WORKGROUP_SIZE) workgroups, folded past 65,535.

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = global_index(wid, nwg, lid);
  if (i >= params.invocations) {
    return;
  }
  // Factors near 1 keep the values finite for any number of rounds.
  let factor = vec4<f32>(0.9999, 0.9998, 0.9997, 0.9996);
  let offset = vec4<f32>(0.0001, 0.0002, 0.0003, 0.0004);
  let seed = vec4<f32>(f32(i % 1024u) * 0.001);
  var a0 = seed;
  var a1 = seed + 0.1;
  var a2 = seed + 0.2;
  var a3 = seed + 0.3;
  var a4 = seed + 0.4;
  var a5 = seed + 0.5;
  var a6 = seed + 0.6;
  var a7 = seed + 0.7;
  for (var round = 0u; round < params.iterations; round++) {
    for (var step = 0u; step < 4u; step++) {
      a0 = fma(a0, factor, offset);
      a1 = fma(a1, factor, offset);
      a2 = fma(a2, factor, offset);
      a3 = fma(a3, factor, offset);
      a4 = fma(a4, factor, offset);
      a5 = fma(a5, factor, offset);
      a6 = fma(a6, factor, offset);
      a7 = fma(a7, factor, offset);
    }
  }
  out[i] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}
