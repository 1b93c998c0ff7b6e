// Turning 2D slices into SAM image encoder input, the way SAM prepares an
// image: intensities scaled to 0-255, the longest side resized to the
// encoder's input size, SAM's pixel mean subtracted and std divided out
// per RGB channel (the gray slice repeated to 3 channels), and zero padding
// at the bottom and right to a square. SAM pads after normalising, so the
// padding is 0 in normalised units.
//
// NOTE: SAM rounds the image to uint8 and resizes it with PIL's bilinear
// filter (torchvision resize on a PIL image). Here the values stay float32
// and the resize is upsample3d's bilinear rule (F.interpolate,
// align_corners false, no antialiasing). When enlarging, the two filters
// agree to 1.5e-5 on a 37x23 float image (PIL 9.4, checked with
// /usr/bin/python3), so only the uint8 rounding differs. When shrinking,
// PIL widens its filter (antialiasing) and this resize does not, so fine
// detail aliases: slices larger than the input size give features that
// differ more from SAM's.

import { div, maximum, mul, sub } from '../../ops/elementwise.js';
import { tensor, formatShape, tidy, type Tensor } from '../../tensor.js';
import { pad } from '../../ops/layout.js';
import { max, min } from '../../ops/reduce.js';
import { upsample3d } from '../../ops/upsample.js';
import { reshape } from '../../ops/view.js';

/** SAM's pixel mean per RGB channel, in 0-255 units. */
export const SAM_PIXEL_MEAN = [123.675, 116.28, 103.53] as const;
/** SAM's pixel standard deviation per RGB channel, in 0-255 units. */
export const SAM_PIXEL_STD = [58.395, 57.12, 57.375] as const;

/**
 * Intensities mapped to 0 and 255: each slice's own minimum and maximum
 * ('slice'), or a fixed [low, high] such as a volume's range or a CT
 * window (values outside are not clipped).
 */
export type IntensityRange = 'slice' | readonly [number, number];

export interface SamPreprocessOptions {
  /** Side of the square encoder input, such as 1024 for SAM or 256. */
  imageSize: number;
  /** Intensity range mapped to 0-255 (default 'slice'). */
  intensityRange?: IntensityRange;
}

/**
 * Returns the size of a height x width slice after its longest side is
 * resized to `imageSize`, rounded half up like SAM's
 * ResizeLongestSide.get_preprocess_shape.
 */
export function resizedShape(
  height: number,
  width: number,
  imageSize: number,
): [number, number] {
  const scale = imageSize / Math.max(height, width);
  return [Math.floor(height * scale + 0.5), Math.floor(width * scale + 0.5)];
}

/** Scales intensities to 0-255 per slice or from a fixed range. */
function toByteRange(slices: Tensor, range: IntensityRange): Tensor {
  // A floor on the spread keeps a constant slice at 0 instead of NaN.
  const minSpread = 1e-12;
  if (range === 'slice') {
    const low = min(slices, [1, 2, 3], { keepDims: true });
    const high = max(slices, [1, 2, 3], { keepDims: true });
    const spread = maximum(sub(high, low), minSpread);
    return mul(div(sub(slices, low), spread), 255);
  }
  const [low, high] = range;
  const spread = Math.max(high - low, minSpread);
  return mul(sub(slices, low), 255 / spread);
}

/**
 * Prepares gray slices [N, 1, H, W] as SAM image encoder input
 * [N, 3, imageSize, imageSize]. The slice content fills the top-left
 * resizedShape(H, W, imageSize) pixels, and the rest is zero padding.
 * A constant slice maps to 0 before normalising.
 */
export function samPreprocess(
  slices: Tensor,
  options: SamPreprocessOptions,
): Tensor {
  const { imageSize } = options;
  const range = options.intensityRange ?? 'slice';
  if (slices.rank !== 4 || slices.shape[1] !== 1 || slices.size === 0) {
    throw new RangeError(
      `samPreprocess: slices ${formatShape(slices.shape)} must be ` +
        '[N, 1, H, W] with at least one pixel',
    );
  }
  if (!Number.isInteger(imageSize) || imageSize < 1) {
    throw new RangeError(
      `samPreprocess: imageSize must be a positive integer, got ${imageSize}`,
    );
  }
  if (range !== 'slice' && !(range[1] > range[0])) {
    throw new RangeError(
      `samPreprocess: intensityRange [${range.join(', ')}] must have ` +
        'high > low',
    );
  }
  const [n, , h, w] = slices.shape;
  const [outH, outW] = resizedShape(h, w, imageSize);
  return tidy(() => {
    const bytes = toByteRange(slices, range);
    let resized = bytes;
    if (outH !== h || outW !== w) {
      const volume = reshape(bytes, [n, 1, 1, h, w]);
      const size = [1, outH, outW] as const;
      const up = upsample3d(volume, { size, mode: 'linear' });
      resized = reshape(up, [n, 1, outH, outW]);
    }
    const mean = tensor(Float32Array.from(SAM_PIXEL_MEAN), [1, 3, 1, 1]);
    const std = tensor(Float32Array.from(SAM_PIXEL_STD), [1, 3, 1, 1]);
    // [N, 1, h, w] against [1, 3, 1, 1] broadcasts to three channels.
    const normalised = div(sub(resized, mean), std);
    const pads = [[0, 0], [0, 0], [0, imageSize - outH], [0, imageSize - outW]];
    return pad(normalised, pads, 0);
  });
}
