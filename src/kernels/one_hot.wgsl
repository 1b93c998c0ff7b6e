// One-hot encoding of integer label maps, with a device-side label check.
//
// Layout: labels is [N, voxels] f32 holding integer ids (a [N, 1, D, H, W]
// or [N, D, H, W] label map); out is [N, K, voxels] f32 ([N, K, D, H, W]):
//   out[n, k, v] = 1 if labels[n, v] == k else 0.
// A label that is not an integer in [0, K) (NaN included) gets a row of
// zeros, and status[0] = min(status[0], n * voxels + v) records the first
// such voxel; one_hot_status then copies its value into status[1], and the
// host reads both at the next sync() and throws. The host sets status[0] to
// 0xffffffff before the dispatch.
//
// When out would exceed one storage binding, the host runs one dispatch per
// group of (n, k) rows into a smaller out, starting at row first_row.
//
// Bindings: 1 labels (read, f32), 2 out (read_write, f32),
//   3 status (read_write, atomic<u32>, 2 elements).
// Uniforms: rows = the (n, k) rows computed (N * K, or a group); first_row
//   = row n * K + k of out[0]; voxels; classes = K.
// Workgroup: WORKGROUP_SIZE x 1 x 1, one invocation per voxel, which loops
//   over the rows: one label load serves every class of its item, and
//   neighbouring invocations store to neighbouring addresses.
// Grid: ceil(voxels / WORKGROUP_SIZE) workgroups, folded past 65,535.

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let v = global_index(wid, nwg, lid);
  if (v >= params.voxels) {
    return;
  }
  var n = params.first_row / params.classes;
  var k = params.first_row % params.classes;
  var label = labels[n * params.voxels + v];
  for (var r = 0u; r < params.rows; r++) {
    if (k == params.classes) {
      k = 0u;
      n += 1u;
      label = labels[n * params.voxels + v];
    }
    // NaN and infinity are caught by their exponent bits, a test that a
    // compiler assuming finite math cannot fold away.
    let finite = (bitcast<u32>(label) & 0x7f800000u) != 0x7f800000u;
    let valid = finite && label >= 0.0 && label < f32(params.classes) &&
      floor(label) == label;
    if (!valid && k == 0u) {
      atomicMin(&status[0], n * params.voxels + v);
    }
    out[r * params.voxels + v] = select(0.0, 1.0, valid && label == f32(k));
    k += 1u;
  }
}
