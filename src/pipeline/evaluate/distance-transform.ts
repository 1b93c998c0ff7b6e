// Exact Euclidean distance transform of a binary volume with anisotropic
// voxel spacing, by Felzenszwalb and Huttenlocher's separable algorithm:
// one lower envelope of parabolas per line, along W, then H, then D. Each
// pass is linear in the voxel count, so the whole transform is too.
//
// Layout: row-major [D, H, W], with spacing in mm in the same axis order.

export type Shape3 = readonly [number, number, number];

/** Scratch arrays of one line, sized for the longest axis. */
interface LineBuffers {
  values: Float64Array;
  result: Float64Array;
  vertices: Int32Array;
  bounds: Float64Array;
}

/**
 * Returns the abscissa (in samples) where the parabola weight (x - q)^2 +
 * values[q] starts to lie below weight (x - p)^2 + values[p], for p < q.
 */
function intersection(
  values: Float64Array,
  weight: number,
  p: number,
  q: number,
): number {
  return (
    (values[q] + weight * q * q - (values[p] + weight * p * p)) /
    (2 * weight * (q - p))
  );
}

/**
 * Computes, for one line of `count` samples `spacing` mm apart, the lower
 * envelope result[x] = min over q of (spacing (x - q))^2 + values[q].
 * Infinite values take no part, and a line without finite values stays
 * infinite.
 */
function lowerEnvelope(
  count: number,
  spacing: number,
  buffers: LineBuffers,
): void {
  const { values, result, vertices, bounds } = buffers;
  const weight = spacing * spacing;

  let last = -1;
  for (let q = 0; q < count; q++) {
    if (values[q] === Infinity) continue;
    if (last < 0) {
      last = 0;
      vertices[0] = q;
      bounds[0] = -Infinity;
      bounds[1] = Infinity;
      continue;
    }
    let start = intersection(values, weight, vertices[last], q);
    while (start <= bounds[last]) {
      last -= 1;
      start = intersection(values, weight, vertices[last], q);
    }
    last += 1;
    vertices[last] = q;
    bounds[last] = start;
    bounds[last + 1] = Infinity;
  }

  if (last < 0) {
    result.fill(Infinity, 0, count);
    return;
  }
  let segment = 0;
  for (let x = 0; x < count; x++) {
    while (bounds[segment + 1] < x) segment += 1;
    const offset = x - vertices[segment];
    result[x] = weight * offset * offset + values[vertices[segment]];
  }
}

/** Runs `lowerEnvelope` on every line of `field` along one axis, in place. */
function transformAxis(
  field: Float64Array,
  shape: Shape3,
  axis: 0 | 1 | 2,
  spacing: number,
  buffers: LineBuffers,
): void {
  const strides = [shape[1] * shape[2], shape[2], 1];
  const count = shape[axis];
  const stride = strides[axis];
  // The two other axes enumerate the lines.
  const [outer, inner] = ([0, 1, 2] as const).filter((a) => a !== axis);
  for (let i = 0; i < shape[outer]; i++) {
    for (let j = 0; j < shape[inner]; j++) {
      const start = i * strides[outer] + j * strides[inner];
      for (let x = 0; x < count; x++) {
        buffers.values[x] = field[start + x * stride];
      }
      lowerEnvelope(count, spacing, buffers);
      for (let x = 0; x < count; x++) {
        field[start + x * stride] = buffers.result[x];
      }
    }
  }
}

/**
 * Computes the exact squared Euclidean distance in mm^2 from every voxel
 * to the nearest voxel where `features` is non-zero, with voxel centres
 * `spacingMm` apart along [D, H, W]. Feature voxels get 0. Without any
 * feature voxel every distance is Infinity.
 */
export function squaredDistanceTransform(
  features: ArrayLike<number>,
  shape: Shape3,
  spacingMm: Shape3,
): Float64Array {
  const field = new Float64Array(features.length);
  for (let voxel = 0; voxel < features.length; voxel++) {
    field[voxel] = features[voxel] !== 0 ? 0 : Infinity;
  }
  const longest = Math.max(...shape);
  const buffers: LineBuffers = {
    values: new Float64Array(longest),
    result: new Float64Array(longest),
    vertices: new Int32Array(longest),
    bounds: new Float64Array(longest + 1),
  };
  transformAxis(field, shape, 2, spacingMm[2], buffers);
  transformAxis(field, shape, 1, spacingMm[1], buffers);
  transformAxis(field, shape, 0, spacingMm[0], buffers);
  return field;
}
