// Mean and standard deviation of per-case scores over a test set.

/** Mean and population standard deviation of a set of values. */
export interface Statistics {
  /** Mean of the finite values, or NaN when there are none. */
  mean: number;
  /** Population standard deviation (divided by n, numpy's default). */
  std: number;
  /** Number of finite values that entered the mean. */
  count: number;
}

/** Scores of a test set per label and for the mean over labels. */
export interface Summary extends Statistics {
  /** Statistics over the cases of each label, by label name. */
  perLabel: Record<string, Statistics>;
}

/**
 * Computes the mean and population standard deviation of the finite
 * values, skipping NaN and infinite ones (a score that is undefined for
 * that case). Without any finite value, mean and std are NaN, which
 * JSON.stringify writes as null.
 */
export function meanStd(values: readonly number[]): Statistics {
  let count = 0;
  let total = 0;
  for (const value of values) {
    if (!Number.isFinite(value)) continue;
    count += 1;
    total += value;
  }
  if (count === 0) return { mean: NaN, std: NaN, count };
  const mean = total / count;
  let squares = 0;
  for (const value of values) {
    if (Number.isFinite(value)) squares += (value - mean) ** 2;
  }
  return { mean, std: Math.sqrt(squares / count), count };
}

/**
 * Summarises per-label scores over test cases. `cases[i][j]` is the score
 * of label `names[j]` in case i. The top-level mean and std are taken over
 * the cases of each case's mean over its labels, and `perLabel` contains each
 * label's mean and std over the cases. Both use the population standard
 * deviation (divided by n). Non-finite scores (NaN for a label absent from
 * both maps, Infinity for a distance to an empty structure) are skipped
 * everywhere, and `count` says how many values remained.
 *
 * @example
 * summarize([[0.8, 0.6], [0.9, NaN]], ['thalamus', 'caudate']);
 * // mean 0.8 (of 0.7 and 0.9), perLabel.caudate { mean 0.6, count 1 }
 */
export function summarize(
  cases: readonly (readonly number[])[],
  names: readonly string[],
): Summary {
  const op = 'summarize';
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) {
      throw new RangeError(`${op}: label name "${name}" is listed twice`);
    }
    seen.add(name);
  }
  cases.forEach((scores, index) => {
    if (scores.length !== names.length) {
      throw new RangeError(
        `${op}: case ${index} has ${scores.length} scores but there are ` +
          `${names.length} label names; pass one score per name, in the ` +
          'same order (NaN where a label has none)',
      );
    }
  });

  const caseMeans = cases.map((scores) => meanStd(scores).mean);
  const perLabel: Record<string, Statistics> = {};
  names.forEach((name, label) => {
    perLabel[name] = meanStd(cases.map((scores) => scores[label]));
  });
  return { ...meanStd(caseMeans), perLabel };
}
