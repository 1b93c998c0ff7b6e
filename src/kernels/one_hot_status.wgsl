// Completes one_hot's label check: copies the bits of the first invalid
// label, labels[status[0]], into status[1] so that the host can name the
// value even after the label tensor is gone.
//
// Bindings: 1 labels (read, f32), 2 status (read_write, u32, 2 elements;
//   status[0] = 0xffffffff when every label was valid).
// Workgroup: 1 x 1 x 1. Grid: 1 workgroup.

@compute @workgroup_size(1)
fn main() {
  let first = status[0];
  if (first != 0xffffffffu) {
    status[1] = bitcast<u32>(labels[first]);
  }
}
