// The Python globals a torch.save checkpoint may name, each as a pure data
// constructor. Any other global is rejected, so loading a checkpoint never
// runs code from it.

import {
  PickleDict,
  PickleRejection,
  PickleSet,
  PickleTuple,
  describe,
  isPickleCallable,
  type PickleCallable,
} from './pickle-values.js';
import type { HostDtype } from './host-tensor.js';

/** A storage named by a persistent id: one file under <archive>/data/. */
export class StorageRef {
  constructor(
    readonly key: string,
    readonly dtype: HostDtype,
    /** Element count of the storage. */
    readonly size: number,
    readonly typeName: string,
  ) {}
}

/** A tensor as saved: a strided view into a storage, decoded on demand. */
export class SavedTensor {
  constructor(
    readonly storage: StorageRef,
    readonly storageOffset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
  ) {}
}

/** A torch storage class named in a persistent id. */
export class StorageType {
  constructor(
    readonly name: string,
    /** null for dtypes HostTensor cannot hold, such as complex64. */
    readonly dtype: HostDtype | null,
    readonly pythonDtype: string,
  ) {}
}

// A class that only serves as an argument, such as torch.Tensor in
// _rebuild_from_type_v2.
class TypeMarker {
  constructor(readonly pickleName: string) {}
}

const STORAGE_TYPES: Readonly<Record<string, [HostDtype | null, string]>> = {
  FloatStorage: ['float32', 'float32'],
  DoubleStorage: ['float64', 'float64'],
  HalfStorage: ['float16', 'float16'],
  BFloat16Storage: ['bfloat16', 'bfloat16'],
  LongStorage: ['int64', 'int64'],
  IntStorage: ['int32', 'int32'],
  ShortStorage: ['int16', 'int16'],
  CharStorage: ['int8', 'int8'],
  ByteStorage: ['uint8', 'uint8'],
  BoolStorage: ['bool', 'bool'],
  UntypedStorage: ['uint8', 'uint8'],
  ComplexFloatStorage: [null, 'complex64'],
  ComplexDoubleStorage: [null, 'complex128'],
  QInt8Storage: [null, 'qint8'],
  QUInt8Storage: [null, 'quint8'],
  QInt32Storage: [null, 'qint32'],
  QUInt4x2Storage: [null, 'quint4x2'],
  QUInt2x4Storage: [null, 'quint2x4'],
};

// torch.dtype objects pickle as the global torch.<name>; they load as the
// name.
// prettier-ignore
const TORCH_DTYPE_NAMES = new Set([
  'float32', 'float', 'float64', 'double', 'float16', 'half', 'bfloat16',
  'int64', 'long', 'int32', 'int', 'int16', 'short', 'int8', 'uint8', 'bool',
  'complex64', 'cfloat', 'complex128', 'cdouble',
]);

const TENSOR_TYPES = new Set(['torch.Tensor', 'torch.nn.parameter.Parameter']);

function callable(
  pickleName: string,
  call: (args: readonly unknown[]) => unknown,
): PickleCallable {
  return { pickleName, call };
}

const CALLABLES: ReadonlyMap<string, PickleCallable> = new Map(
  [
    callable('collections.OrderedDict', makeDict),
    callable('torch._utils._rebuild_tensor_v2', rebuildTensor),
    callable('torch._utils._rebuild_tensor', rebuildTensor),
    callable('torch._utils._rebuild_parameter', rebuildParameter),
    callable('torch._utils._rebuild_parameter_with_state', rebuildParameter),
    callable('torch._tensor._rebuild_from_type_v2', rebuildFromType),
    callable('torch._tensor._rebuild_from_type', rebuildFromType),
    callable('torch.Size', (args) => expectTuple('torch.Size', args[0])),
    callable('torch.device', makeDevice),
    callable('builtins.set', makeSet),
    callable('builtins.frozenset', makeSet),
    callable('__builtin__.set', makeSet),
    callable('__builtin__.frozenset', makeSet),
    callable('_codecs.encode', encodeLatin1),
  ].map((item) => [item.pickleName, item]),
);

/**
 * Resolves a global named in a checkpoint pickle, or throws PickleRejection
 * naming it and saying why it is not loaded.
 */
export function findTorchGlobal(module: string, name: string): unknown {
  const qualified = `${module}.${name}`;
  const known = CALLABLES.get(qualified);
  if (known !== undefined) return known;
  if (module === 'torch') {
    const storage = STORAGE_TYPES[name];
    if (storage !== undefined) {
      return new StorageType(name, storage[0], storage[1]);
    }
    if (TORCH_DTYPE_NAMES.has(name)) return name;
  }
  if (TENSOR_TYPES.has(qualified)) return new TypeMarker(qualified);
  reject(
    `global '${qualified}' is not allowed: this reader loads only tensors, ` +
      `their storages and plain containers (dict, OrderedDict, list, tuple), ` +
      `and never runs code from a checkpoint${rejectionHint(module)}`,
  );
}

function rejectionHint(module: string): string {
  if (module.startsWith('__torch__')) {
    return (
      '; the file looks like a TorchScript archive (torch.jit.save): save ' +
      'model.state_dict() with torch.save instead'
    );
  }
  if (module === 'numpy' || module.startsWith('numpy.')) {
    return '; convert numpy values to Python numbers or tensors before saving';
  }
  return '';
}

/**
 * Resolves a persistent id ('storage', storage type, key, location, size),
 * the form torch.save gives every storage.
 */
export function loadTorchPersistentId(id: unknown): StorageRef {
  const items = id instanceof PickleTuple ? id.items : [];
  const [kind, type, key, , size] = items;
  if (items.length !== 5 || kind !== 'storage') {
    reject(
      `persistent id is ${describe(id)}, not ` +
        `('storage', type, key, location, size)`,
    );
  }
  if (!(type instanceof StorageType)) {
    reject(`storage type is ${describe(type)}, not a torch storage class`);
  }
  if (type.dtype === null) {
    reject(
      `storage type torch.${type.name} (dtype ${type.pythonDtype}) is not ` +
        `supported; supported dtypes: float32, float64, float16, bfloat16, ` +
        `int64, int32, int16, int8, uint8, bool`,
    );
  }
  if (typeof key !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(key)) {
    reject(`storage key is ${describe(key)}, not a file name`);
  }
  const count = expectCount('storage size', size);
  return new StorageRef(key, type.dtype, count, type.name);
}

// _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
// backward_hooks[, metadata]); _rebuild_tensor takes the first four.
function rebuildTensor(args: readonly unknown[]): SavedTensor {
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof StorageRef)) {
    reject(`tensor storage is ${describe(storage)}, not a storage`);
  }
  const shape = expectTuple('tensor size', size).items.map((dim) =>
    expectCount('tensor size', dim),
  );
  const strides = expectTuple('tensor stride', stride).items.map((step) =>
    expectCount('tensor stride', step),
  );
  if (strides.length !== shape.length) {
    reject(
      `tensor size has ${shape.length} dims but stride has ${strides.length}`,
    );
  }
  const storageOffset = expectCount('storage offset', offset);
  return new SavedTensor(storage, storageOffset, shape, strides);
}

// _rebuild_parameter(data, requires_grad, backward_hooks[, state]): the
// parameter's data is the tensor.
function rebuildParameter(args: readonly unknown[]): SavedTensor {
  const data = args[0];
  if (!(data instanceof SavedTensor)) {
    reject(`parameter data is ${describe(data)}, not a tensor`);
  }
  return data;
}

// _rebuild_from_type_v2(func, new_type, args, state) calls func(*args) and
// casts to new_type; only plain tensors and parameters are accepted.
function rebuildFromType(args: readonly unknown[]): unknown {
  const [func, type, funcArgs] = args;
  if (!(type instanceof TypeMarker)) {
    reject(`tensor type ${describe(type)} is not supported`);
  }
  if (!isPickleCallable(func)) {
    reject(`tensor rebuild function ${describe(func)} is not callable`);
  }
  return func.call(expectTuple('tensor rebuild arguments', funcArgs).items);
}

// OrderedDict() or OrderedDict([(key, value), ...]).
function makeDict(args: readonly unknown[]): PickleDict {
  const dict = new PickleDict();
  const pairs = args[0];
  if (pairs === undefined) return dict;
  if (!Array.isArray(pairs)) {
    reject(`OrderedDict argument is ${describe(pairs)}, not a list of pairs`);
  }
  for (const pair of pairs) {
    const items = pair instanceof PickleTuple ? pair.items : pair;
    if (!Array.isArray(items) || items.length !== 2) {
      reject('OrderedDict item is not a key-value pair');
    }
    dict.entries.set(items[0], items[1]);
  }
  return dict;
}

function makeSet(args: readonly unknown[]): PickleSet {
  const set = new PickleSet();
  const items = args[0];
  if (Array.isArray(items)) set.addAll(items);
  else if (items instanceof PickleTuple) set.addAll(items.items);
  else if (items !== undefined) reject(`set of ${describe(items)}`);
  return set;
}

function makeDevice(args: readonly unknown[]): string {
  const [type, index] = args;
  if (typeof type !== 'string') reject(`device of ${describe(type)}`);
  return typeof index === 'number' ? `${type}:${index}` : type;
}

// Protocol 2 stores Python 3 bytes as _codecs.encode(text, 'latin1').
function encodeLatin1(args: readonly unknown[]): Uint8Array {
  const [text, encoding] = args;
  const latin1 = encoding === 'latin1' || encoding === 'latin-1';
  if (typeof text !== 'string' || !latin1) {
    reject('_codecs.encode is allowed only for latin1 text');
  }
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0xff) reject('_codecs.encode text is not latin1');
    bytes[i] = code;
  }
  return bytes;
}

function expectTuple(what: string, value: unknown): PickleTuple {
  if (value instanceof PickleTuple) return value;
  if (Array.isArray(value)) return new PickleTuple(value);
  reject(`${what} is ${describe(value)}, not a tuple`);
}

function expectCount(what: string, value: unknown): number {
  const valid =
    typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
  if (!valid) {
    reject(`${what} is ${describe(value)}, not a non-negative integer`);
  }
  return value as number;
}

function reject(message: string): never {
  throw new PickleRejection(message);
}
