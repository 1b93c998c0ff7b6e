// Matching checkpoint tensors to a model's parameters by name and shape.

import { CheckpointError } from './checkpoint-error.js';
import { formatShape, type HostTensor } from './host-tensor.js';

/**
 * Rules that rename checkpoint keys to model names: [pattern, replacement]
 * pairs applied in order, each once per key, as String.replace applies them
 * (a string pattern is compiled to a RegExp without flags, so '$1' refers to
 * its groups). A null replacement drops every key the pattern matches, such
 * as the prompt encoder weights of a SAM checkpoint when only the image
 * encoder is loaded.
 */
export type KeyMapping = ReadonlyArray<
  readonly [RegExp | string, string | null]
>;

export interface LoadOptions {
  mapping?: KeyMapping;
  /** Returns the report instead of throwing when keys do not match. */
  lenient?: boolean;
}

export interface ShapeMismatch {
  /** The model's name for the tensor. */
  name: string;
  /** The checkpoint key it was mapped from. */
  source: string;
  expected: number[];
  actual: number[];
}

export interface LoadReport {
  /** Checkpoint tensors by model name, for every name whose shape matches. */
  matched: Map<string, HostTensor>;
  /** Model names that no checkpoint key maps to. */
  missing: string[];
  /** Checkpoint keys (before mapping) whose mapped name is not in the model. */
  unexpected: string[];
  mismatched: ShapeMismatch[];
  /** Checkpoint keys that map to a name another key already took. */
  duplicates: string[];
  /** Checkpoint keys that a null mapping rule dropped. */
  dropped: string[];
}

/** Anything with a stateDict() of shaped values, such as an nn.Module. */
export interface StateDictSource {
  stateDict(): ReadonlyMap<string, { readonly shape: readonly number[] }>;
}

/** A CheckpointError that carries the full report of a failed load. */
export class LoadReportError extends CheckpointError {
  override name = 'LoadReportError';

  constructor(
    message: string,
    readonly report: LoadReport,
  ) {
    super(message);
  }
}

/**
 * Renames a checkpoint key with the mapping rules; returns null when a rule
 * drops it.
 */
export function mapCheckpointKey(
  key: string,
  mapping: KeyMapping,
): string | null {
  return applyRules(key, compileMapping(mapping));
}

type CompiledRule = readonly [RegExp, string | null];

function compileMapping(mapping: KeyMapping): CompiledRule[] {
  return mapping.map(([pattern, replacement], index) => [
    compilePattern(pattern, index),
    replacement,
  ]);
}

function applyRules(
  key: string,
  rules: readonly CompiledRule[],
): string | null {
  let name = key;
  for (const [regex, replacement] of rules) {
    if (replacement === null) {
      regex.lastIndex = 0;
      if (regex.test(name)) return null;
      continue;
    }
    name = name.replace(regex, replacement);
  }
  return name;
}

/**
 * Matches checkpoint tensors to the expected names and shapes and reports
 * missing, unexpected, shape-mismatched and duplicate keys. Unless `lenient`
 * is set, any of those throws a LoadReportError that lists them by name.
 */
export function loadCheckpoint(
  expected: ReadonlyMap<string, readonly number[]> | StateDictSource,
  tensors: ReadonlyMap<string, HostTensor>,
  options: LoadOptions = {},
): LoadReport {
  const shapes = expectedShapes(expected);
  const rules = compileMapping(options.mapping ?? []);
  const report: LoadReport = {
    matched: new Map(),
    missing: [],
    unexpected: [],
    mismatched: [],
    duplicates: [],
    dropped: [],
  };
  const taken = new Set<string>();
  for (const [key, tensor] of tensors) {
    const name = applyRules(key, rules);
    if (name === null) {
      report.dropped.push(key);
      continue;
    }
    const shape = shapes.get(name);
    if (shape === undefined) {
      report.unexpected.push(key);
      continue;
    }
    if (taken.has(name)) {
      report.duplicates.push(key);
      continue;
    }
    taken.add(name);
    if (!sameShape(shape, tensor.shape)) {
      report.mismatched.push({
        name,
        source: key,
        expected: [...shape],
        actual: [...tensor.shape],
      });
      continue;
    }
    report.matched.set(name, tensor);
  }
  for (const name of shapes.keys()) {
    if (!taken.has(name)) report.missing.push(name);
  }

  const problems = describeProblems(report);
  if (problems.length > 0 && options.lenient !== true) {
    throw new LoadReportError(
      `loadCheckpoint: ${problems.join('; ')}; fix the key mapping, or pass ` +
        `lenient: true to load the ${report.matched.size} matching tensors`,
      report,
    );
  }
  return report;
}

function expectedShapes(
  expected: ReadonlyMap<string, readonly number[]> | StateDictSource,
): ReadonlyMap<string, readonly number[]> {
  if (expected instanceof Map) {
    return expected as ReadonlyMap<string, readonly number[]>;
  }
  const shapes = new Map<string, readonly number[]>();
  for (const [name, value] of (expected as StateDictSource).stateDict()) {
    shapes.set(name, value.shape);
  }
  return shapes;
}

function compilePattern(pattern: RegExp | string, index: number): RegExp {
  if (pattern instanceof RegExp) return pattern;
  try {
    return new RegExp(pattern);
  } catch (error) {
    throw new CheckpointError(
      `loadCheckpoint: mapping rule ${index} pattern ` +
        `${JSON.stringify(pattern)} is an invalid regular expression: ` +
        (error as Error).message,
    );
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((dim, i) => dim === b[i]);
}

// Maximum names listed per kind in the message. The report lists all.
const LISTED_NAMES = 10;

function describeMismatch(mismatch: ShapeMismatch): string {
  const { name, source, expected, actual } = mismatch;
  const from = source === name ? '' : ` from '${source}'`;
  return (
    `${name} (model ${formatShape(expected)}, ` +
    `checkpoint ${formatShape(actual)}${from})`
  );
}

function describeProblems(report: LoadReport): string[] {
  const problems: string[] = [];
  const add = (count: number, kind: string, names: string[]): void => {
    if (count === 0) return;
    const shown = names.slice(0, LISTED_NAMES).join(', ');
    const more =
      count > LISTED_NAMES ? `, and ${count - LISTED_NAMES} more` : '';
    problems.push(`${count} ${kind}: ${shown}${more}`);
  };
  add(
    report.missing.length,
    'missing (in the model, not the checkpoint)',
    report.missing,
  );
  add(
    report.unexpected.length,
    'unexpected (in the checkpoint, not the model)',
    report.unexpected,
  );
  add(
    report.mismatched.length,
    'shape mismatched',
    report.mismatched.map(describeMismatch),
  );
  add(
    report.duplicates.length,
    'duplicate (mapped to a name already loaded)',
    report.duplicates,
  );
  return problems;
}
