// Debug check for NaN and infinity: flags[0] = min(flags[0], slot) when any
// element of x is not finite. The host sets flags[0] to 0xffffffff before
// the first check of a batch and gives each checked op the next slot, so
// flags[0] ends as the slot of the earliest op whose output had a NaN or Inf.
//
// Bindings: 1 x (read, f32), 2 flags (read_write, atomic<u32>, 1 element).
// Uniforms: size = elements of x; slot = index of the checked op in its batch.
// Workgroup: WORKGROUP_SIZE x 1 x 1. Grid: ceil(size / WORKGROUP_SIZE)
//   workgroups, folded into 2D or 3D past 65,535.

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = global_index(wid, nwg, lid);
  if (i >= params.size) {
    return;
  }
  // An all-ones exponent is infinity or NaN; the bit test cannot be folded
  // away by a compiler that assumes finite math.
  if ((bitcast<u32>(x[i]) & 0x7f800000u) == 0x7f800000u) {
    atomicMin(&flags[0], params.slot);
  }
}
