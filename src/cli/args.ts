// Command-line flags of the rrl-medsam verbs: a declared set of --flags per
// verb, parsed with checks that name the verb, the flag, the offending
// value and the fix, and the --help text built from the same declarations.

/** Thrown for bad command lines; main() prints it with the verb's usage. */
export class UsageError extends Error {
  override name = 'UsageError';
  constructor(
    message: string,
    readonly verb?: string,
  ) {
    super(message);
  }
}

export type FlagKind = 'string' | 'integer' | 'number' | 'boolean';

export interface FlagSpec {
  kind: FlagKind;
  /** One line for --help. */
  help: string;
  /** Value name in the usage line (default: the kind). */
  value?: string;
  required?: boolean;
  /** Allowed values of a string or integer flag. */
  choices?: readonly (string | number)[];
  /** Smallest allowed value of a number or integer flag. */
  min?: number;
  /** Largest allowed value of a number or integer flag. */
  max?: number;
  default?: string | number | boolean;
}

export interface VerbSpec {
  name: string;
  /** One line for the verb list. */
  summary: string;
  /** Paragraph(s) printed under the usage line by --help. */
  description: string;
  flags: Record<string, FlagSpec>;
  examples: string[];
}

export type ParsedFlags = Record<string, string | number | boolean | undefined>;

function closest(name: string, candidates: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(name, candidate);
    if (distance < bestDistance) {
      bestDistance = distance;
      best = candidate;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : null;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j];
      row[j] = Math.min(
        row[j] + 1,
        row[j - 1] + 1,
        diagonal + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      diagonal = above;
    }
  }
  return row[b.length];
}

function parseValue(verb: string, flag: string, spec: FlagSpec, raw: string) {
  const where = `${verb}: --${flag}`;
  let value: string | number = raw;
  if (spec.kind === 'integer' || spec.kind === 'number') {
    const number = Number(raw);
    const whole = spec.kind === 'integer';
    // Integers are plain decimal digits within the exact range of a double,
    // so "0x9", "1e1" and "9007199254740993" are rejected, not converted.
    const plainInteger = /^[+-]?\d+$/.test(raw.trim()) && Number.isSafeInteger(number);
    if (raw.trim() === '' || !Number.isFinite(number) || (whole && !plainInteger)) {
      throw new UsageError(
        `${where} must be ${whole ? 'an integer' : 'a number'}, got "${raw}"`,
        verb,
      );
    }
    if (spec.min !== undefined && number < spec.min) {
      throw new UsageError(`${where} must be >= ${spec.min}, got ${number}`, verb);
    }
    if (spec.max !== undefined && number > spec.max) {
      throw new UsageError(`${where} must be <= ${spec.max}, got ${number}`, verb);
    }
    value = number;
  }
  if (spec.choices && !spec.choices.includes(value)) {
    throw new UsageError(
      `${where} must be one of ${spec.choices.join(', ')}, got "${raw}"`,
      verb,
    );
  }
  return value;
}

/**
 * Parses `argv` (the words after the verb) against the verb's flags.
 * Accepts `--flag value`, `--flag=value` and bare booleans (`--quick`,
 * `--no-quick`). Throws UsageError for unknown flags (suggesting the
 * closest), missing values, bad numbers and missing required flags. A
 * flag given twice takes its last value, with a note passed to `warn`.
 */
export function parseFlags(
  spec: VerbSpec,
  argv: readonly string[],
  warn: (line: string) => void = () => undefined,
): ParsedFlags {
  const verb = spec.name;
  const names = Object.keys(spec.flags);
  const parsed: ParsedFlags = {};
  // The command-line words that set each flag, to note a flag given twice.
  const flagWords = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i];
    if (!word.startsWith('--')) {
      throw new UsageError(
        `${verb}: unexpected argument "${word}"; every option is a --flag ` +
          `(see rrl-medsam ${verb} --help)`,
        verb,
      );
    }
    const equals = word.indexOf('=');
    let name = word.slice(2, equals < 0 ? undefined : equals);
    let inline = equals < 0 ? undefined : word.slice(equals + 1);
    let flag = spec.flags[name];
    if (!flag && name.startsWith('no-') && spec.flags[name.slice(3)]?.kind === 'boolean') {
      name = name.slice(3);
      flag = spec.flags[name];
      inline = inline ?? 'false';
    }
    if (!flag) {
      const suggestion = closest(name, names);
      throw new UsageError(
        `${verb}: unknown option --${name}` +
          (suggestion ? `; did you mean --${suggestion}?` : '') +
          ` (see rrl-medsam ${verb} --help)`,
        verb,
      );
    }
    const earlier = flagWords.get(name);
    const words = inline === undefined && flag.kind !== 'boolean' ? `${word} ${argv[i + 1] ?? ''}`.trim() : word;
    if (earlier !== undefined) {
      // The last value wins, as in most command-line parsers, so that a
      // script can override a flag; the note catches a repeat by mistake.
      warn(`note: ${verb}: --${name} is given twice ("${earlier}" and "${words}"); using the last`);
    }
    flagWords.set(name, words);
    if (flag.kind === 'boolean') {
      if (inline !== undefined && inline !== 'true' && inline !== 'false') {
        throw new UsageError(`${verb}: --${name} takes no value, got "${inline}"`, verb);
      }
      parsed[name] = inline !== 'false';
      continue;
    }
    const raw = inline ?? argv[++i];
    if (raw === undefined || (inline === undefined && raw.startsWith('--'))) {
      throw new UsageError(
        `${verb}: --${name} needs a value (${flag.value ?? flag.kind})`,
        verb,
      );
    }
    parsed[name] = parseValue(verb, name, flag, raw);
  }
  for (const [name, flag] of Object.entries(spec.flags)) {
    if (parsed[name] !== undefined) continue;
    if (flag.required) {
      throw new UsageError(
        `${verb}: --${name} is required (${flag.help.replace(/\.$/, '')})`,
        verb,
      );
    }
    if (flag.default !== undefined) parsed[name] = flag.default;
  }
  return parsed;
}

/** Returns the --help text of a verb. */
export function verbHelp(spec: VerbSpec): string {
  const usage = Object.entries(spec.flags).map(([name, flag]) => {
    const part = flag.kind === 'boolean' ? `--${name}` : `--${name} ${flag.value ?? flag.kind.toUpperCase()}`;
    return flag.required ? part : `[${part}]`;
  });
  const width = Math.max(
    ...Object.entries(spec.flags).map(
      ([name, flag]) => name.length + (flag.kind === 'boolean' ? 0 : (flag.value ?? flag.kind).length + 1),
    ),
  );
  const lines = [
    `usage: rrl-medsam ${spec.name} ${usage.join(' ')}`,
    '',
    spec.description,
    '',
    'options:',
  ];
  for (const [name, flag] of Object.entries(spec.flags)) {
    const left = flag.kind === 'boolean' ? name : `${name} ${flag.value ?? flag.kind}`;
    const extra = [
      flag.required ? 'required' : undefined,
      flag.default !== undefined && flag.kind !== 'boolean' ? `default ${flag.default}` : undefined,
      flag.choices ? `one of ${flag.choices.join(', ')}` : undefined,
    ].filter(Boolean);
    const suffix = extra.length > 0 ? ` (${extra.join('; ')})` : '';
    lines.push(`  --${left.padEnd(width)}  ${flag.help}${suffix}`);
  }
  lines.push(`  --${'help'.padEnd(width)}  show this text`);
  if (spec.examples.length > 0) {
    lines.push('', 'examples:', ...spec.examples.map((example) => `  ${example}`));
  }
  return lines.join('\n');
}
