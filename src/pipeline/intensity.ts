// Intensity normalisation: percentiles of the foreground, clipping to
// them and scaling to [0, 1].

/**
 * Returns the p-th percentiles (0 to 100) of the values, interpolating
 * linearly between order statistics (NumPy's default 'linear' method).
 * Sorts one copy of the values for all requested percentiles.
 */
export function percentiles(
  values: ArrayLike<number>,
  ps: readonly number[],
): number[] {
  const source = 'percentiles';
  if (values.length === 0) {
    throw new Error(`${source}: no values to take percentiles of`);
  }
  for (const p of ps) {
    if (!(p >= 0 && p <= 100)) {
      throw new Error(`${source}: percentile ${p} is not within [0, 100]`);
    }
  }
  return percentilesOfSorted(Float64Array.from(values).sort(), ps);
}

function percentilesOfSorted(
  sorted: Float64Array,
  ps: readonly number[],
): number[] {
  return ps.map((p) => {
    const position = (p / 100) * (sorted.length - 1);
    const below = Math.floor(position);
    const above = Math.min(below + 1, sorted.length - 1);
    const fraction = position - below;
    return sorted[below] + fraction * (sorted[above] - sorted[below]);
  });
}

export interface IntensityOptions {
  /** Percentile mapped to 0 (default 0.5). */
  lowerPercentile?: number;
  /** Percentile mapped to 1 (default 99.5). */
  upperPercentile?: number;
}

/** The intensity window that normalisation maps to [0, 1]. */
export interface IntensityWindow {
  lower: number;
  upper: number;
}

/**
 * Returns the intensity window of the foreground: the lower and upper
 * percentiles of the values above `threshold`.
 */
export function foregroundWindow(
  values: ArrayLike<number>,
  threshold: number,
  options: IntensityOptions = {},
): IntensityWindow {
  const source = 'foregroundWindow';
  const lowerPercentile = options.lowerPercentile ?? 0.5;
  const upperPercentile = options.upperPercentile ?? 99.5;
  if (!(lowerPercentile < upperPercentile)) {
    throw new Error(
      `${source}: lowerPercentile ${lowerPercentile} must be below ` +
        `upperPercentile ${upperPercentile}`,
    );
  }
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    if (values[i] > threshold) count++;
  }
  if (count === 0) {
    throw new Error(
      `${source}: no value is above the foreground threshold ${threshold}`,
    );
  }
  const foreground = new Float64Array(count);
  let next = 0;
  for (let i = 0; i < values.length; i++) {
    if (values[i] > threshold) foreground[next++] = values[i];
  }
  const [lower, upper] = percentiles(foreground, [
    lowerPercentile,
    upperPercentile,
  ]);
  return { lower, upper };
}

/**
 * Clips the values to the window and scales them to [0, 1] in a new array.
 * A window of zero width (a constant foreground) maps everything at or
 * above it to 1 and everything below to 0.
 */
export function normalizeIntensity(
  values: ArrayLike<number>,
  window: IntensityWindow,
): Float32Array {
  const { lower, upper } = window;
  const out = new Float32Array(values.length);
  const width = upper - lower;
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (width > 0) {
      const scaled = (value - lower) / width;
      out[i] = Math.min(1, Math.max(0, scaled));
    } else {
      out[i] = value >= lower ? 1 : 0;
    }
  }
  return out;
}
