// CPU reference (float64, plain loops) for upsample3d with the semantics of
// torch.nn.functional.interpolate, modes 'trilinear' and 'nearest'.
//
// Layout: x is [N, C, D, H, W]; the output is [N, C, outD, outH, outW].
// Per axis, output position dst reads the source coordinate
// - linear, alignCorners: dst * (in - 1) / (out - 1), or 0 when out == 1;
// - linear, otherwise: (dst + 0.5) * ratio - 0.5, clamped at 0;
// - nearest: min(floor(dst * ratio), in - 1);
// where ratio is 1 / scale when the caller gave a scale factor and
// in / out when it gave the size (PyTorch's rule, so a scale of 1.5 maps
// with 1 / 1.5 even though out = floor(1.5 * in)). Linear mode blends
// floor(src) and the next element (the same one at the last position)
// with weights 1 - frac(src) and frac(src).

import type { NDArray } from './ndarray.js';

export type Triple = [number, number, number];

export interface UpsampleRefParams {
  outSize: Triple;
  mode: 'linear' | 'nearest';
  alignCorners: boolean;
  /** Scale factors the caller gave, or null when it gave the size. */
  scale: Triple | null;
}

/** Source taps of one output position along one axis, with their weights. */
export function sourceTaps(
  dst: number,
  inSize: number,
  outSize: number,
  scale: number | null,
  mode: 'linear' | 'nearest',
  alignCorners: boolean,
): [number, number][] {
  const ratio = scale === null ? inSize / outSize : 1 / scale;
  if (mode === 'nearest') {
    return [[Math.min(Math.floor(dst * ratio), inSize - 1), 1]];
  }
  let src: number;
  if (alignCorners) src = outSize > 1 ? (dst * (inSize - 1)) / (outSize - 1) : 0;
  else src = Math.max((dst + 0.5) * ratio - 0.5, 0);
  const i0 = Math.floor(src);
  const i1 = i0 < inSize - 1 ? i0 + 1 : i0;
  const frac = src - i0;
  return [
    [i0, 1 - frac],
    [i1, frac],
  ];
}

/** Upsamples x [N, C, D, H, W] to [N, C, ...p.outSize]. */
export function upsample3dRef(x: NDArray, p: UpsampleRefParams): NDArray {
  const [n, c, ...inSize] = x.shape;
  const [od, oh, ow] = p.outSize;
  // taps[axis][dst]: the source taps of output position dst along axis.
  const taps = p.outSize.map((size, axis) =>
    Array.from({ length: size }, (_, dst) =>
      sourceTaps(
        dst,
        inSize[axis],
        size,
        p.scale?.[axis] ?? null,
        p.mode,
        p.alignCorners,
      ),
    ),
  );
  const [d, h, w] = inSize;
  const out = new Float64Array(n * c * od * oh * ow);
  let o = 0;
  for (let volume = 0; volume < n * c; volume++)
    for (let z = 0; z < od; z++)
      for (let y = 0; y < oh; y++)
        for (let xw = 0; xw < ow; xw++) {
          let total = 0;
          for (const [iz, wz] of taps[0][z])
            for (const [iy, wy] of taps[1][y])
              for (const [ix, wx] of taps[2][xw]) {
                total += wz * wy * wx * x.data[((volume * d + iz) * h + iy) * w + ix];
              }
          out[o++] = total;
        }
  return { shape: [n, c, od, oh, ow], data: out };
}
