// Prepares the fixed-point scatter of warp_backward.wgsl: finds max |g|
// over the upstream gradient and sets every 64-bit sum to the bias 2^31.
//
// max |g| is kept as the bit pattern of the f32 value: for non-negative
// floats the order of the bit patterns (as u32) is the order of the values,
// so the maximum is an integer atomicMax, which does not depend on the
// order of the updates. Infinity is 0x7f800000 and every NaN is larger, so
// later passes detect a non-finite gradient from the result.
//
// The bias: a sum near 0 would move its low word across 0 and 2^32 with
// almost every addition of either sign, and each crossing costs a second
// atomic add on the high word. Starting at 2^31 puts sums near 0 in the
// middle of the low word's range; warp_fixed_to_float.wgsl subtracts it.
//
// Bindings: 1 values (read, u32: the f32 bits of g); 2 result (read_write,
//   atomic<u32>, one element, cleared to 0 before the launch); 3
//   accumulator (read_write, u32) the low words of all elements, then
//   their high words.
// Uniforms: size = elements of g, which are also the image elements;
//   stride = invocations in the grid.
// Workgroup: WORKGROUP_SIZE x 1 x 1. Invocation i handles elements i,
//   i + stride, i + 2 * stride, ...; each workgroup combines its maxima in
//   workgroup memory and issues one global atomicMax.
// Grid: any number of workgroups; the launcher caps it so that each
//   invocation handles a run of elements.

const BIAS: u32 = 0x80000000u;

var<workgroup> workgroup_max: atomic<u32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  var largest = 0u;
  for (var i = global_index(wid, nwg, lid); i < params.size; i += params.stride) {
    largest = max(largest, values[i] & 0x7fffffffu);
    accumulator[i] = BIAS;
    accumulator[params.size + i] = 0u;
  }
  // Workgroup memory starts at zero.
  atomicMax(&workgroup_max, largest);
  workgroupBarrier();
  if (lid == 0u) {
    atomicMax(&result[0], atomicLoad(&workgroup_max));
  }
}
