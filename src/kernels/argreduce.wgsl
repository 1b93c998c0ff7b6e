// Index of the maximum or minimum along one axis: x is read as
// [outer, axis_size, inner] and each invocation scans piece c of the axis
// (elements [c * chunk_size, (c + 1) * chunk_size)) for one (outer, inner)
// position, writing the best value and its index to values/indices at
// [outer, chunks, inner]. With chunks > 1 the caller runs the kernel again
// on those partials with has_indices = 1, so the index read back is the one
// found by the earlier pass. The comparison is strict and pieces are
// scanned in order, so on ties the first index wins (as in PyTorch).
//
// Bindings: 1 x (read, f32), 2 indices_in (read, f32; x itself when
//   has_indices is 0), 3 values (read_write, f32), 4 indices (read_write,
//   f32 holding whole numbers).
// Uniforms: size = outer * chunks * inner; axis_size; inner; chunks;
//   chunk_size; has_indices = 1 when indices_in holds the indices of x;
//   per_invocation = consecutive outputs each invocation computes.
// Constants: {{BETTER}} is true when v should replace best ('v > best' for
//   argmax, 'v < best' for argmin).
// Workgroup: WORKGROUP_SIZE x 1 x 1, per_invocation outputs per invocation.
// Grid: ceil(size / (per_invocation * WORKGROUP_SIZE)), folded into 2D or
//   3D past 65,535.

fn index_at(position: u32, along: u32) -> f32 {
  if (params.has_indices == 1u) {
    return indices_in[position];
  }
  return f32(along);
}

// Scans one piece for output o = (outer * chunks + c) * inner + i.
fn scan_piece(o: u32) {
  let i = o % params.inner;
  let rest = o / params.inner;
  let c = rest % params.chunks;
  let outer = rest / params.chunks;
  let base = outer * params.axis_size * params.inner + i;
  let start = c * params.chunk_size;
  let count = min(params.chunk_size, params.axis_size - start);
  var position = base + start * params.inner;
  var best = x[position];
  var best_index = index_at(position, start);
  for (var k = 1u; k < count; k++) {
    position += params.inner;
    let v = x[position];
    if ({{BETTER}}) {
      best = v;
      best_index = index_at(position, start + k);
    }
  }
  values[o] = best;
  indices[o] = best_index;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let first = global_index(wid, nwg, lid) * params.per_invocation;
  let last = min(first + params.per_invocation, params.size);
  for (var o = first; o < last; o++) {
    scan_piece(o);
  }
}
