// Largest |g| over a tensor, as the bit pattern of the f32 value: for
// non-negative floats the order of the bit patterns (as u32) is the order
// of the values, so the maximum is an integer atomicMax, which does not
// depend on the order of the updates. Infinity is 0x7f800000 and every NaN
// is larger, so the caller detects a non-finite gradient from the result.
// warp_backward.wgsl derives its fixed-point scale from it.
//
// Bindings: 1 values (read, u32: the f32 bits of the tensor); 2 result
//   (read_write, atomic<u32>, one element, cleared to 0 before the launch).
// Uniforms: size = elements; stride = invocations in the grid.
// Workgroup: WORKGROUP_SIZE x 1 x 1. Invocation i reads elements i,
//   i + stride, i + 2 * stride, ...; each workgroup combines its maxima in
//   workgroup memory and issues one global atomicMax.
// Grid: any number of workgroups; the launcher caps it so that each
//   invocation reads a run of elements.

var<workgroup> workgroup_max: atomic<u32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  var largest = 0u;
  for (var i = global_index(wid, nwg, lid); i < params.size; i += params.stride) {
    largest = max(largest, values[i] & 0x7fffffffu);
  }
  // Workgroup memory starts at zero.
  atomicMax(&workgroup_max, largest);
  workgroupBarrier();
  if (lid == 0u) {
    atomicMax(&result[0], atomicLoad(&workgroup_max));
  }
}
