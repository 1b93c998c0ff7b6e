// Row reduction, the fast path for reduced axes that are innermost and
// contiguous: x is read as [rows, row_size] and each row is cut into
// `chunks` pieces; out[row * chunks + c] combines piece c of the row.
// With chunks == 1 the output is final; otherwise the caller runs another
// pass over the [rows, chunks] partials, so a long row is summed as a tree
// of short sequential runs (small float32 error, fixed order).
//
// Bindings: 1 x (read, f32), 2 out (read_write, f32).
// Uniforms: rows; row_size = elements per row; chunks = pieces per row;
//   chunk_size = elements per piece (blocked layout only); scale = factor
//   applied to every output (1 / count on the last pass of a mean, else 1);
//   per_invocation = consecutive outputs each invocation computes (more
//   than 1 on CPU adapters when pieces are short, see kernels/runs.ts).
// Constants: {{COMBINE}} combines acc and v; {{IDENTITY}} starts the three
//   extra accumulators ('0.0' for a sum, 'first' for max and min, whose
//   identity is an infinity that WGSL cannot write as a literal);
//   {{INTERLEAVED}} picks which elements form piece c: 'false' reads the
//   contiguous run [c * chunk_size, (c + 1) * chunk_size), which suits CPU
//   adapters whose SIMD lanes are invocations; 'true' reads c, c + chunks,
//   c + 2 * chunks, ..., so neighbouring invocations read neighbouring
//   addresses (coalesced loads on a GPU).
// Workgroup: WORKGROUP_SIZE x 1 x 1, per_invocation outputs per invocation.
// Grid: ceil(rows * chunks / (per_invocation * WORKGROUP_SIZE)), folded
//   into 2D or 3D past 65,535.

fn combine(acc: f32, v: f32) -> f32 {
  return {{COMBINE}};
}

// Combines piece c of row `row`, for output o = row * chunks + c.
fn reduce_output(o: u32) -> f32 {
  let row = o / params.chunks;
  let c = o % params.chunks;
  var start: u32;
  var step: u32;
  var count: u32;
  if ({{INTERLEAVED}}) {
    start = row * params.row_size + c;
    step = params.chunks;
    count = (params.row_size - c + params.chunks - 1u) / params.chunks;
  } else {
    start = row * params.row_size + c * params.chunk_size;
    step = 1u;
    count = min(params.chunk_size, params.row_size - c * params.chunk_size);
  }
  // Four accumulators shorten the dependency chain and the sequential runs.
  let first = x[start];
  var a0 = first;
  var a1 = f32({{IDENTITY}});
  var a2 = f32({{IDENTITY}});
  var a3 = f32({{IDENTITY}});
  var k = 1u;
  for (; k + 4u <= count; k += 4u) {
    let i = start + k * step;
    a0 = combine(a0, x[i]);
    a1 = combine(a1, x[i + step]);
    a2 = combine(a2, x[i + 2u * step]);
    a3 = combine(a3, x[i + 3u * step]);
  }
  for (; k < count; k++) {
    a0 = combine(a0, x[start + k * step]);
  }
  return combine(combine(a0, a1), combine(a2, a3));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let first = global_index(wid, nwg, lid) * params.per_invocation;
  let last = min(first + params.per_invocation, params.rows * params.chunks);
  for (var o = first; o < last; o++) {
    out[o] = reduce_output(o) * params.scale;
  }
}
