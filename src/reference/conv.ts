// CPU references for conv3d and convTranspose3d (float64, plain loops).

import type { NDArray } from './ndarray.js';

export interface ConvParams {
  stride: [number, number, number];
  padding: [number, number, number];
  dilation: [number, number, number];
}

/** conv3d: x [N, Cin, D, H, W], weight [Cout, Cin, kD, kH, kW], bias [Cout]. */
export function conv3dRef(x: NDArray, weight: NDArray, bias: NDArray | null, p: ConvParams): NDArray {
  const [n, cin, d, h, w] = x.shape;
  const [cout, , kd, kh, kw] = weight.shape;
  const inSize = [d, h, w];
  const kernel = [kd, kh, kw];
  const outSize = inSize.map(
    (s, i) => Math.floor((s + 2 * p.padding[i] - p.dilation[i] * (kernel[i] - 1) - 1) / p.stride[i]) + 1,
  );
  const [od, oh, ow] = outSize;
  const out = new Float64Array(n * cout * od * oh * ow);
  let o = 0;
  for (let b = 0; b < n; b++)
    for (let co = 0; co < cout; co++)
      for (let z = 0; z < od; z++)
        for (let y = 0; y < oh; y++)
          for (let xw = 0; xw < ow; xw++) {
            let acc = bias ? bias.data[co] : 0;
            for (let ci = 0; ci < cin; ci++)
              for (let a = 0; a < kd; a++) {
                const iz = z * p.stride[0] + a * p.dilation[0] - p.padding[0];
                if (iz < 0 || iz >= d) continue;
                for (let c = 0; c < kh; c++) {
                  const iy = y * p.stride[1] + c * p.dilation[1] - p.padding[1];
                  if (iy < 0 || iy >= h) continue;
                  for (let e = 0; e < kw; e++) {
                    const ix = xw * p.stride[2] + e * p.dilation[2] - p.padding[2];
                    if (ix < 0 || ix >= w) continue;
                    acc +=
                      x.data[(((b * cin + ci) * d + iz) * h + iy) * w + ix] *
                      weight.data[(((co * cin + ci) * kd + a) * kh + c) * kw + e];
                  }
                }
              }
            out[o++] = acc;
          }
  return { shape: [n, cout, od, oh, ow], data: out };
}

/**
 * convTranspose3d: x [N, Cin, D, H, W], weight [Cin, Cout, kD, kH, kW],
 * written as the scatter it is defined by.
 */
export function convTranspose3dRef(
  x: NDArray,
  weight: NDArray,
  bias: NDArray | null,
  p: ConvParams & { outputPadding: [number, number, number] },
): NDArray {
  const [n, cin, d, h, w] = x.shape;
  const [, cout, kd, kh, kw] = weight.shape;
  const inSize = [d, h, w];
  const kernel = [kd, kh, kw];
  const outSize = inSize.map(
    (s, i) =>
      (s - 1) * p.stride[i] - 2 * p.padding[i] + p.dilation[i] * (kernel[i] - 1) + p.outputPadding[i] + 1,
  );
  const [od, oh, ow] = outSize;
  const out = new Float64Array(n * cout * od * oh * ow);
  for (let b = 0; b < n; b++)
    for (let co = 0; co < cout; co++) {
      const value = bias ? bias.data[co] : 0;
      out.fill(value, (b * cout + co) * od * oh * ow, (b * cout + co + 1) * od * oh * ow);
    }
  for (let b = 0; b < n; b++)
    for (let ci = 0; ci < cin; ci++)
      for (let z = 0; z < d; z++)
        for (let y = 0; y < h; y++)
          for (let xw = 0; xw < w; xw++) {
            const v = x.data[(((b * cin + ci) * d + z) * h + y) * w + xw];
            for (let co = 0; co < cout; co++)
              for (let a = 0; a < kd; a++) {
                const oz = z * p.stride[0] - p.padding[0] + a * p.dilation[0];
                if (oz < 0 || oz >= od) continue;
                for (let c = 0; c < kh; c++) {
                  const oy = y * p.stride[1] - p.padding[1] + c * p.dilation[1];
                  if (oy < 0 || oy >= oh) continue;
                  for (let e = 0; e < kw; e++) {
                    const ox = xw * p.stride[2] - p.padding[2] + e * p.dilation[2];
                    if (ox < 0 || ox >= ow) continue;
                    out[(((b * cout + co) * od + oz) * oh + oy) * ow + ox] +=
                      v * weight.data[(((ci * cout + co) * kd + a) * kh + c) * kw + e];
                  }
                }
              }
          }
  return { shape: [n, cout, od, oh, ow], data: out };
}
