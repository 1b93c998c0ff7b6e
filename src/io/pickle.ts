// A safe Python unpickler: a stack machine over the pickle opcodes of
// protocols 2 to 5 that builds plain values and never executes anything.
//
// Python globals (GLOBAL, STACK_GLOBAL) are resolved only through the
// caller's findGlobal hook, which returns a PickleCallable or a plain value
// for the names it allows and throws for the rest. REDUCE, NEWOBJ and BUILD
// only call those callables. Every read is bounds-checked, and every opcode
// consumes at least one byte, so any input ends in a value or a
// CheckpointError.
// The values it builds are described in pickle-values.ts.
//
// NOTE: the text opcodes of protocols 0 and 1 other than GLOBAL and PERSID
// (INT, LONG, FLOAT, STRING, UNICODE, PUT, GET, INST and OBJ), the copyreg
// extension opcodes (EXT1/2/4) and out-of-band buffers (protocol 5
// NEXT_BUFFER) are rejected as unsupported.

import { CheckpointError } from './checkpoint-error.js';
import {
  PickleDict,
  PickleRejection,
  PickleSet,
  PickleTuple,
  describe,
  isPickleCallable,
} from './pickle-values.js';

export interface UnpickleHooks {
  /** Returns the value of an allowed global; throws for any other. */
  findGlobal(module: string, name: string): unknown;
  /** Returns the object that a persistent id (BINPERSID, PERSID) names. */
  persistentLoad(id: unknown): unknown;
}

// prettier-ignore
const OPCODE_NAMES: Readonly<Record<number, string>> = {
  0x28: 'MARK', 0x2e: 'STOP', 0x30: 'POP', 0x31: 'POP_MARK', 0x32: 'DUP',
  0x4a: 'BININT', 0x4b: 'BININT1', 0x4d: 'BININT2', 0x8a: 'LONG1',
  0x8b: 'LONG4', 0x4e: 'NONE', 0x88: 'NEWTRUE', 0x89: 'NEWFALSE',
  0x47: 'BINFLOAT', 0x54: 'BINSTRING', 0x55: 'SHORT_BINSTRING',
  0x58: 'BINUNICODE', 0x8c: 'SHORT_BINUNICODE', 0x8d: 'BINUNICODE8',
  0x42: 'BINBYTES', 0x43: 'SHORT_BINBYTES', 0x8e: 'BINBYTES8',
  0x96: 'BYTEARRAY8', 0x5d: 'EMPTY_LIST', 0x61: 'APPEND', 0x65: 'APPENDS',
  0x6c: 'LIST', 0x29: 'EMPTY_TUPLE', 0x74: 'TUPLE', 0x85: 'TUPLE1',
  0x86: 'TUPLE2', 0x87: 'TUPLE3', 0x7d: 'EMPTY_DICT', 0x64: 'DICT',
  0x73: 'SETITEM', 0x75: 'SETITEMS', 0x8f: 'EMPTY_SET', 0x90: 'ADDITEMS',
  0x91: 'FROZENSET', 0x63: 'GLOBAL', 0x93: 'STACK_GLOBAL', 0x52: 'REDUCE',
  0x62: 'BUILD', 0x81: 'NEWOBJ', 0x92: 'NEWOBJ_EX', 0x71: 'BINPUT',
  0x72: 'LONG_BINPUT', 0x94: 'MEMOIZE', 0x68: 'BINGET', 0x6a: 'LONG_BINGET',
  0x51: 'BINPERSID', 0x50: 'PERSID', 0x80: 'PROTO', 0x95: 'FRAME',
  // Recognised only to name them in the unsupported-opcode error.
  0x49: 'INT', 0x4c: 'LONG', 0x46: 'FLOAT', 0x53: 'STRING', 0x56: 'UNICODE',
  0x69: 'INST', 0x6f: 'OBJ', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4',
  0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER', 0x70: 'PUT', 0x67: 'GET',
};

const MAX_PROTOCOL = 5;
// Maximum bytes of a GLOBAL module or name line. Python names are far shorter.
const MAX_LINE_BYTES = 4096;
// Longest LONG1/LONG4 integer read; tensor sizes and offsets need 8 bytes,
// and decoding a long one is quadratic in its length.
const MAX_LONG_BYTES = 64;

/**
 * Unpickles one object from `bytes`. `context` prefixes every error message,
 * such as "readTorchCheckpoint: archive/data.pkl".
 */
export function unpickle(
  bytes: Uint8Array,
  hooks: UnpickleHooks,
  context: string,
): unknown {
  return new Unpickler(bytes, hooks, context).run();
}

class Unpickler {
  private position = 0;
  private opcodeStart = 0;
  private opcode = 0;
  private stack: unknown[] = [];
  private readonly marks: number[] = [];
  private readonly memo = new Map<number, unknown>();
  private readonly view: DataView;
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true });

  constructor(
    private readonly bytes: Uint8Array,
    private readonly hooks: UnpickleHooks,
    private readonly context: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  fail(what: string): never {
    const name = OPCODE_NAMES[this.opcode] ?? 'opcode';
    throw new CheckpointError(
      `${this.context}: byte ${this.opcodeStart} (${name}): ${what}`,
    );
  }

  run(): unknown {
    for (;;) {
      if (this.position >= this.bytes.length) {
        this.opcodeStart = this.position;
        this.fail('pickle data ends before STOP; the file is truncated');
      }
      this.opcodeStart = this.position;
      this.opcode = this.bytes[this.position++];
      if (this.opcode === 0x2e) return this.pop();
      try {
        this.step(this.opcode);
      } catch (error) {
        if (error instanceof PickleRejection) this.fail(error.message);
        throw error;
      }
    }
  }

  // One opcode; the cases follow Python's Lib/pickle.py _Unpickler.
  private step(opcode: number): void {
    switch (opcode) {
      case 0x80: {
        const protocol = this.readUint(1);
        if (protocol > MAX_PROTOCOL) {
          this.fail(`unsupported pickle protocol ${protocol}`);
        }
        return;
      }
      case 0x95:
        this.readUint(8);
        return;
      case 0x28:
        this.marks.push(this.stack.length);
        return;
      case 0x30:
        this.pop();
        return;
      case 0x31:
        this.popMark();
        return;
      case 0x32:
        this.stack.push(this.top());
        return;
      case 0x4e:
        this.stack.push(null);
        return;
      case 0x88:
      case 0x89:
        this.stack.push(opcode === 0x88);
        return;
      case 0x4a:
        this.stack.push(this.readInt32());
        return;
      case 0x4b:
        this.stack.push(this.readUint(1));
        return;
      case 0x4d:
        this.stack.push(this.readUint(2));
        return;
      case 0x8a:
        this.stack.push(this.readLong(this.readUint(1)));
        return;
      case 0x8b:
        this.stack.push(this.readLong(this.readLength(4)));
        return;
      case 0x47:
        this.stack.push(this.readFloat64());
        return;
      default:
        this.stepStringsAndContainers(opcode);
    }
  }

  private stepStringsAndContainers(opcode: number): void {
    switch (opcode) {
      case 0x58:
        this.stack.push(this.readText(this.readLength(4)));
        return;
      case 0x8c:
        this.stack.push(this.readText(this.readUint(1)));
        return;
      case 0x8d:
        this.stack.push(this.readText(this.readLength(8)));
        return;
      case 0x54:
        this.stack.push(this.readText(this.readLength(4)));
        return;
      case 0x55:
        this.stack.push(this.readText(this.readUint(1)));
        return;
      case 0x42:
        this.stack.push(this.readBytes(this.readLength(4)).slice());
        return;
      case 0x43:
        this.stack.push(this.readBytes(this.readUint(1)).slice());
        return;
      case 0x8e:
      case 0x96:
        this.stack.push(this.readBytes(this.readLength(8)).slice());
        return;
      case 0x5d:
        this.stack.push([]);
        return;
      case 0x6c:
        this.stack.push(this.popMark());
        return;
      case 0x61:
        this.appendItems([this.pop()]);
        return;
      case 0x65:
        this.appendItems(this.popMark());
        return;
      case 0x29:
        this.stack.push(new PickleTuple([]));
        return;
      case 0x74:
        this.stack.push(new PickleTuple(this.popMark()));
        return;
      case 0x85:
      case 0x86:
      case 0x87:
        this.stack.push(new PickleTuple(this.popMany(opcode - 0x84)));
        return;
      default:
        this.stepDictsAndObjects(opcode);
    }
  }

  private stepDictsAndObjects(opcode: number): void {
    switch (opcode) {
      case 0x7d:
        this.stack.push(new PickleDict());
        return;
      case 0x64: {
        const dict = new PickleDict();
        this.setItems(dict, this.popMark());
        this.stack.push(dict);
        return;
      }
      case 0x73: {
        const items = this.popMany(2);
        this.setItems(this.topDict(), items);
        return;
      }
      case 0x75: {
        const items = this.popMark();
        this.setItems(this.topDict(), items);
        return;
      }
      case 0x8f:
        this.stack.push(new PickleSet());
        return;
      case 0x90: {
        const items = this.popMark();
        const set = this.top();
        if (!(set instanceof PickleSet)) {
          this.fail(`ADDITEMS target is ${describe(set)}, not a set`);
        }
        set.addAll(items);
        return;
      }
      case 0x91: {
        const set = new PickleSet();
        set.addAll(this.popMark());
        this.stack.push(set);
        return;
      }
      default:
        this.stepGlobalsAndMemo(opcode);
    }
  }

  private stepGlobalsAndMemo(opcode: number): void {
    switch (opcode) {
      case 0x63: {
        const module = this.readLine();
        const name = this.readLine();
        this.stack.push(this.hooks.findGlobal(module, name));
        return;
      }
      case 0x93: {
        const [module, name] = this.popMany(2);
        if (typeof module !== 'string' || typeof name !== 'string') {
          this.fail('STACK_GLOBAL needs a module and a name string');
        }
        this.stack.push(this.hooks.findGlobal(module, name));
        return;
      }
      case 0x52: {
        const args = this.pop();
        const callable = this.pop();
        this.stack.push(this.callGlobal(callable, args));
        return;
      }
      case 0x81: {
        const [callable, args] = this.popMany(2);
        this.stack.push(this.callGlobal(callable, args));
        return;
      }
      case 0x92: {
        const [callable, args, keywords] = this.popMany(3);
        if (!(keywords instanceof PickleDict) || keywords.entries.size > 0) {
          this.fail('keyword arguments are not supported');
        }
        this.stack.push(this.callGlobal(callable, args));
        return;
      }
      case 0x62:
        this.build();
        return;
      case 0x51:
        this.stack.push(this.hooks.persistentLoad(this.pop()));
        return;
      case 0x50:
        this.stack.push(this.hooks.persistentLoad(this.readLine()));
        return;
      case 0x71:
        this.memo.set(this.readUint(1), this.top());
        return;
      case 0x72:
        this.memo.set(this.readUint(4), this.top());
        return;
      case 0x94:
        this.memo.set(this.memo.size, this.top());
        return;
      case 0x68:
        this.stack.push(this.memoGet(this.readUint(1)));
        return;
      case 0x6a:
        this.stack.push(this.memoGet(this.readUint(4)));
        return;
      default: {
        const name = OPCODE_NAMES[opcode];
        this.fail(
          name === undefined
            ? `invalid pickle opcode 0x${opcode.toString(16).padStart(2, '0')}`
            : `pickle opcode ${name} is not supported`,
        );
      }
    }
  }

  private callGlobal(callable: unknown, args: unknown): unknown {
    if (!isPickleCallable(callable)) {
      this.fail(`${describe(callable)} is not callable`);
    }
    if (!(args instanceof PickleTuple)) {
      this.fail(
        `arguments of ${callable.pickleName} are ${describe(args)}, ` +
          `not a tuple`,
      );
    }
    return callable.call(args.items);
  }

  // BUILD sets an object's state, and only dicts accept it: OrderedDict
  // stores attributes such as a state dict's _metadata this way. The state
  // is kept aside and never merged into the entries.
  private build(): void {
    const state = this.pop();
    const target = this.top();
    if (!(target instanceof PickleDict)) {
      this.fail(`cannot set state on ${describe(target)}`);
    }
    target.state = state;
  }

  private appendItems(items: unknown[]): void {
    const list = this.top();
    if (!Array.isArray(list)) {
      this.fail(`append target is ${describe(list)}, not a list`);
    }
    for (const item of items) list.push(item);
  }

  private setItems(dict: PickleDict, items: unknown[]): void {
    if (items.length % 2 !== 0) this.fail('odd number of items for a dict');
    for (let i = 0; i < items.length; i += 2) {
      dict.entries.set(items[i], items[i + 1]);
    }
  }

  private topDict(): PickleDict {
    const dict = this.top();
    if (!(dict instanceof PickleDict)) {
      this.fail(`dict target is ${describe(dict)}, not a dict`);
    }
    return dict;
  }

  private memoGet(index: number): unknown {
    if (!this.memo.has(index)) this.fail(`memo has no entry ${index}`);
    return this.memo.get(index);
  }

  private pop(): unknown {
    const floor = this.marks.length > 0 ? this.marks[this.marks.length - 1] : 0;
    if (this.stack.length <= floor) this.fail('stack underflow');
    return this.stack.pop();
  }

  private popMany(count: number): unknown[] {
    const floor = this.marks.length > 0 ? this.marks[this.marks.length - 1] : 0;
    if (this.stack.length - count < floor) this.fail('stack underflow');
    return this.stack.splice(this.stack.length - count, count);
  }

  private popMark(): unknown[] {
    const mark = this.marks.pop();
    if (mark === undefined) this.fail('no MARK on the stack');
    return this.stack.splice(mark);
  }

  private top(): unknown {
    const floor = this.marks.length > 0 ? this.marks[this.marks.length - 1] : 0;
    if (this.stack.length <= floor) this.fail('stack underflow');
    return this.stack[this.stack.length - 1];
  }

  private need(count: number): void {
    if (this.position + count > this.bytes.length) {
      this.fail(
        `needs ${count} bytes but the data ends ` +
          `${this.bytes.length - this.position} bytes later; the file is ` +
          `truncated or corrupt`,
      );
    }
  }

  private readUint(count: 1 | 2 | 4 | 8): number {
    this.need(count);
    const at = this.position;
    this.position += count;
    if (count === 1) return this.bytes[at];
    if (count === 2) return this.view.getUint16(at, true);
    if (count === 4) return this.view.getUint32(at, true);
    const high = this.view.getUint32(at + 4, true);
    const value = high * 2 ** 32 + this.view.getUint32(at, true);
    if (!Number.isSafeInteger(value)) {
      this.fail(`64-bit value ${value} is past 2^53`);
    }
    return value;
  }

  // A length prefix, checked against the bytes that remain.
  private readLength(count: 4 | 8): number {
    const length = this.readUint(count);
    this.need(length);
    return length;
  }

  private readInt32(): number {
    this.need(4);
    const value = this.view.getInt32(this.position, true);
    this.position += 4;
    return value;
  }

  private readFloat64(): number {
    this.need(8);
    const value = this.view.getFloat64(this.position, false);
    this.position += 8;
    return value;
  }

  // A little-endian two's complement integer of `count` bytes.
  private readLong(count: number): number | bigint {
    if (count > MAX_LONG_BYTES) {
      this.fail(
        `integer of ${count} bytes is longer than the ${MAX_LONG_BYTES} ` +
          `supported`,
      );
    }
    const bytes = this.readBytes(count);
    let value = 0n;
    for (let i = count - 1; i >= 0; i--) {
      value = (value << 8n) | BigInt(bytes[i]);
    }
    if (count > 0 && bytes[count - 1] >= 0x80) value -= 1n << BigInt(8 * count);
    const small = Number(value);
    return Number.isSafeInteger(small) ? small : value;
  }

  private readBytes(count: number): Uint8Array {
    this.need(count);
    const bytes = this.bytes.subarray(this.position, this.position + count);
    this.position += count;
    return bytes;
  }

  private readText(count: number): string {
    const bytes = this.readBytes(count);
    try {
      return this.utf8.decode(bytes);
    } catch {
      this.fail('string is not valid UTF-8');
    }
  }

  private readLine(): string {
    const limit = Math.min(this.bytes.length, this.position + MAX_LINE_BYTES);
    const end = this.bytes.indexOf(0x0a, this.position);
    if (end < 0 || end >= limit) this.fail('no end of line within the data');
    const line = this.readText(end - this.position);
    this.position += 1;
    return line;
  }
}
