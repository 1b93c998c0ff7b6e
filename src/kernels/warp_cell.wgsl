// Shared code of warp_linear.wgsl and warp_backward.wgsl, spliced into them
// through the placeholder WARP_CELL. Not a kernel by itself.
//
// Layout: volumes are [N, C, D, H, W] row-major and the flow is
// [N, 3, D, H, W] with channels (D, H, W) in voxels. A voxel's offset in a
// channel plane of D * H * W elements is (d * H + h) * W + w.
//
// The sample point of output voxel (d, h, w) is (d + flow_d, h + flow_h,
// w + flow_w) in voxel units, with no normalisation to [-1, 1]. Its cell
// has the corners floor(p) and floor(p) + 1 along each axis. A corner
// outside [0, size - 1] contributes 0 (zero padding). Its index is clamped
// into the volume so that every read stays in bounds, and its weight is 0.
//
// Corners are packed in vec4s by their x side: `x0` holds the four corners
// at the lower x and `x1` those at the upper x, each in the row order
// (z0 y0, z0 y1, z1 y0, z1 y1). The x1 corners of a voxel's cell are then
// the x0 corners of the next voxel's cell whenever the cell moves by one
// along W, which lets warp_backward.wgsl merge their scatter.

struct Axis {
  // Clamped indices of the lower and upper corner.
  index: vec2<u32>,
  // 1 for a corner inside [0, size - 1], else 0.
  inside: vec2<f32>,
  // Position minus floor(position), in [0, 1].
  fraction: f32,
}

fn axis_of(position: f32, size: u32) -> Axis {
  let lower = floor(position);
  // Clamping before the conversion keeps far points far: -2 and size put
  // both corners outside. A NaN position gives a NaN fraction, so a NaN
  // flow gives NaN values while every read stays in bounds.
  let first = i32(clamp(lower, -2.0, f32(size)));
  let corners = vec2<i32>(first, first + 1);
  let last = i32(size) - 1;
  var axis: Axis;
  axis.index = vec2<u32>(clamp(corners, vec2<i32>(0), vec2<i32>(last)));
  let inside = (corners >= vec2<i32>(0)) & (corners <= vec2<i32>(last));
  axis.inside = select(vec2<f32>(0.0), vec2<f32>(1.0), inside);
  axis.fraction = position - lower;
  return axis;
}

struct Cell {
  // Plane offsets of the corners at the lower and the upper x.
  index_x0: vec4<u32>,
  index_x1: vec4<u32>,
  // Weights of the (z, y) rows, (1 - t, t) of the x sides, each 0 for
  // corners outside the volume: the weight of corner (row r, side x0) is
  // rows[r] * sides.x.
  rows: vec4<f32>,
  sides: vec2<f32>,
}

// Per-axis data of the sample point of voxel `s` of batch item `n`.
struct Point {
  z: Axis,
  y: Axis,
  x: Axis,
}

fn point_of(n: u32, s: u32) -> Point {
  let plane = params.plane;
  let width = params.width;
  let row = s / width;
  let w = s - row * width;
  let d = row / params.height;
  let h = row - d * params.height;
  let flow_base = 3u * n * plane + s;
  var point: Point;
  point.z = axis_of(f32(d) + flow[flow_base], params.depth);
  point.y = axis_of(f32(h) + flow[flow_base + plane], params.height);
  point.x = axis_of(f32(w) + flow[flow_base + 2u * plane], params.width);
  return point;
}

// Weights (1 - t, t) of the two corners of an axis, masked to the inside.
fn lerp_weights(axis: Axis) -> vec2<f32> {
  return axis.inside * vec2<f32>(1.0 - axis.fraction, axis.fraction);
}

// The four (z, y) products of two per-axis pairs, in row order.
fn outer_zy(z: vec2<f32>, y: vec2<f32>) -> vec4<f32> {
  return vec4<f32>(z.x * y.x, z.x * y.y, z.y * y.x, z.y * y.y);
}

fn cell_of(point: Point) -> Cell {
  let width = params.width;
  let slab = point.z.index * (params.height * width);
  let row_y = point.y.index * width;
  let rows = vec4<u32>(slab.x + row_y.x, slab.x + row_y.y, slab.y + row_y.x, slab.y + row_y.y);
  var cell: Cell;
  cell.index_x0 = rows + vec4<u32>(point.x.index.x);
  cell.index_x1 = rows + vec4<u32>(point.x.index.y);
  cell.rows = outer_zy(lerp_weights(point.z), lerp_weights(point.y));
  cell.sides = lerp_weights(point.x);
  return cell;
}
