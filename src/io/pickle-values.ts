// The values the unpickler builds for Python objects, shared with the hooks
// that resolve globals.
//
// None is null, bool boolean, int number (bigint past 2^53), float number,
// str string, bytes Uint8Array, list Array, tuple PickleTuple, dict
// PickleDict, set and frozenset PickleSet.

export class PickleTuple {
  constructor(readonly items: readonly unknown[]) {}
}

export class PickleDict {
  readonly entries = new Map<unknown, unknown>();
  /** The state BUILD set, as pickle stores an object's attributes. */
  state: unknown = undefined;
}

export class PickleSet {
  readonly items: unknown[] = [];

  /** Appends values one by one: spreading a huge array into push() throws. */
  addAll(values: readonly unknown[]): void {
    for (const value of values) this.items.push(value);
  }
}

/** A Python global that REDUCE or NEWOBJ may call with positional args. */
export interface PickleCallable {
  readonly pickleName: string;
  call(args: readonly unknown[]): unknown;
}

export function isPickleCallable(value: unknown): value is PickleCallable {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as PickleCallable).call === 'function' &&
    typeof (value as PickleCallable).pickleName === 'string'
  );
}

/**
 * Thrown by hooks and callables to reject a value; the unpickler rethrows it
 * as a CheckpointError that adds the byte position and opcode.
 */
export class PickleRejection extends Error {
  override name = 'PickleRejection';
}

/** Describes a pickle value's type in a few words, for error messages. */
export function describe(value: unknown): string {
  if (value === null) return 'None';
  if (value instanceof PickleTuple) return 'a tuple';
  if (value instanceof PickleDict) return 'a dict';
  if (value instanceof PickleSet) return 'a set';
  if (Array.isArray(value)) return 'a list';
  if (value instanceof Uint8Array) return 'bytes';
  if (isPickleCallable(value)) return value.pickleName;
  if (typeof value === 'string') {
    return `the string ${JSON.stringify(value.slice(0, 40))}`;
  }
  if (typeof value === 'object') return value.constructor?.name ?? 'an object';
  return `the ${typeof value} ${String(value)}`;
}
