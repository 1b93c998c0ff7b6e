// Reader for PyTorch checkpoints in the zip format that torch.save writes by
// default since PyTorch 1.6.
//
// The archive contains these entries:
// - <archive>/data.pkl: a pickle of the saved object, in which each tensor is
//   a call to torch._utils._rebuild_tensor_v2 on a storage that a persistent
//   id names.
// - <archive>/data/<key>: the raw bytes of each storage.
// - <archive>/version, and since PyTorch 2.1 <archive>/byteorder.
// <archive> is the file name stem in PyTorch 1.x and "archive" in 2.x.

import { CheckpointError } from './checkpoint-error.js';
import {
  decodeElements,
  dtypeBytes,
  elementCount,
  formatShape,
  type HostTensor,
} from './host-tensor.js';
import { unpickle } from './pickle.js';
import { PickleDict, PickleTuple, describe } from './pickle-values.js';
import {
  SavedTensor,
  findTorchGlobal,
  loadTorchPersistentId,
} from './torch-globals.js';
import { readZipDirectory, readZipEntry, type ZipEntry } from './zip.js';

const OP = 'readTorchCheckpoint';

export interface TorchCheckpointOptions {
  /**
   * Key of the top-level dict whose contents are the state dict, such as
   * 'model' or 'state_dict'. Without it, every tensor anywhere in the saved
   * object is returned under its dotted path ('model.encoder.weight').
   */
  root?: string;
  /** Checks each zip entry's CRC-32 (default true). */
  verifyChecksums?: boolean;
  /**
   * Maximum bytes of tensor data to decode (default 64 MiB plus 16 times the
   * file size). Strided views may repeat storage elements, so a tiny crafted
   * file could otherwise ask for terabytes.
   */
  maxBytes?: number;
}

/**
 * Reads the tensors of a torch.save zip checkpoint, as contiguous row-major
 * HostTensors in the saved dtype, keyed by dotted path in pickle order. Nested
 * dicts, lists and tuples are flattened ('optimizer.state.0.momentum'), values
 * that are not tensors are skipped, and a tensor saved on its own is named ''.
 * No code from the file is run: the pickle may name only the globals a state
 * dict needs, and any other global raises CheckpointError naming it.
 */
export function readTorchCheckpoint(
  bytes: Uint8Array,
  options: TorchCheckpointOptions = {},
): Map<string, HostTensor> {
  checkMagic(bytes);
  const verify = options.verifyChecksums ?? true;
  const entries = readZipDirectory(bytes, OP);
  const archive = findArchive(entries);
  const littleEndian = readByteOrder(bytes, entries, archive, verify);

  const pickleName = `${archive}/data.pkl`;
  const pickle = readZipEntry(bytes, entries.get(pickleName)!, OP, verify);
  let saved = unpickle(
    pickle,
    { findGlobal: findTorchGlobal, persistentLoad: loadTorchPersistentId },
    `${OP}: ${pickleName}`,
  );
  if (options.root !== undefined) saved = selectRoot(saved, options.root);

  const found = new Map<string, SavedTensor>();
  const budget = { visits: 4 * pickle.length + 1024 };
  collectTensors(saved, '', found, new Set(), budget);

  const storages = new StorageFiles(bytes, entries, archive, verify);
  const maxBytes = options.maxBytes ?? 64 * 2 ** 20 + 16 * bytes.length;
  let decodedBytes = 0;
  const tensors = new Map<string, HostTensor>();
  for (const [name, tensor] of found) {
    const { dtype } = tensor.storage;
    const count = elementCount(`${OP}: tensor '${name}'`, tensor.shape);
    decodedBytes += count * dtypeBytes(dtype);
    if (decodedBytes > maxBytes) {
      throw new CheckpointError(
        `${OP}: tensor '${name}' ${formatShape(tensor.shape)} takes the ` +
          `decoded data past maxBytes (${maxBytes}); raise the maxBytes ` +
          `option if the file is trusted`,
      );
    }
    const raw = gatherTensor(name, tensor, storages.read(tensor));
    const data = decodeElements(dtype, raw, littleEndian);
    tensors.set(name, { dtype, shape: [...tensor.shape], data });
  }
  return tensors;
}

// The first bytes of a legacy torch.save file: pickle protocol 2 and the
// LONG1 magic number 0x1950a86a20f9469cfc6c.
// prettier-ignore
const LEGACY_MAGIC = [
  0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8,
];

const RESAVE_HINT =
  're-save it in PyTorch with torch.save(torch.load(path), path), which ' +
  'writes the zip format (_use_new_zipfile_serialization=True, the default ' +
  'since 1.6)';

function checkMagic(bytes: Uint8Array): void {
  if (bytes.length < 4) {
    throw new CheckpointError(
      `${OP}: file is ${bytes.length} bytes, too short to be a checkpoint; ` +
        `it is truncated`,
    );
  }
  const isZip = bytes[0] === 0x50 && bytes[1] === 0x4b;
  if (isZip && (bytes[2] === 3 || bytes[2] === 5)) return;
  if (LEGACY_MAGIC.every((byte, i) => bytes[i] === byte)) {
    throw new CheckpointError(
      `${OP}: file is in the legacy torch.save format (before PyTorch 1.6, ` +
        `or saved with _use_new_zipfile_serialization=False), which is not ` +
        `supported; ${RESAVE_HINT}`,
    );
  }
  if (bytes[0] === 0x80 && bytes[1] >= 2 && bytes[1] <= 5) {
    throw new CheckpointError(
      `${OP}: file is a plain Python pickle, not a torch.save zip ` +
        `checkpoint; ${RESAVE_HINT}`,
    );
  }
  // safetensors: an 8-byte header length below 2^40, then '{'.
  if (bytes.length >= 9 && bytes[8] === 0x7b && bytes[5] === 0) {
    throw new CheckpointError(
      `${OP}: file looks like safetensors, not a PyTorch checkpoint; read ` +
        `it with readSafetensors`,
    );
  }
  const head = [...bytes.subarray(0, 4)].map((byte) =>
    byte.toString(16).padStart(2, '0'),
  );
  throw new CheckpointError(
    `${OP}: not a PyTorch zip checkpoint: the file starts with bytes ` +
      `${head.join(' ')}, expected 50 4b 03 04 ('PK', a zip archive)`,
  );
}

function findArchive(entries: ReadonlyMap<string, ZipEntry>): string {
  const archives: string[] = [];
  for (const name of entries.keys()) {
    const match = /^([^/]+)\/data\.pkl$/.exec(name);
    if (match !== null) archives.push(match[1]);
  }
  if (archives.length === 1) return archives[0];
  if (archives.length === 0) {
    const listed = [...entries.keys()].slice(0, 5).join(', ');
    throw new CheckpointError(
      `${OP}: the zip archive has no <archive>/data.pkl entry, so it is not ` +
        `a torch.save checkpoint (entries: ${listed})`,
    );
  }
  throw new CheckpointError(
    `${OP}: the zip archive contains several checkpoints ` +
      `(${archives.join(', ')}); expected one <archive>/data.pkl`,
  );
}

function readByteOrder(
  bytes: Uint8Array,
  entries: ReadonlyMap<string, ZipEntry>,
  archive: string,
  verify: boolean,
): boolean {
  const entry = entries.get(`${archive}/byteorder`);
  if (entry === undefined) return true;
  const raw = readZipEntry(bytes, entry, OP, verify);
  const text = new TextDecoder().decode(raw).trim();
  if (text === 'little' || text === 'big') return text === 'little';
  throw new CheckpointError(
    `${OP}: ${archive}/byteorder is ${JSON.stringify(text.slice(0, 20))}, ` +
      `not 'little' or 'big'`,
  );
}

function selectRoot(saved: unknown, root: string): unknown {
  if (!(saved instanceof PickleDict)) {
    throw new CheckpointError(
      `${OP}: root '${root}' requested but the saved object is ` +
        `${describe(saved)}, not a dict`,
    );
  }
  if (!saved.entries.has(root)) {
    const keys = [...saved.entries.keys()].slice(0, 20).map(String);
    throw new CheckpointError(
      `${OP}: root '${root}' not found; the top-level keys are ` +
        keys.join(', '),
    );
  }
  return saved.entries.get(root);
}

// Containers nested deeper than this are rejected; a state dict nests a few
// levels, and deeper recursion could overflow the JS stack.
const MAX_NESTING = 256;

// Walks dicts, lists and tuples depth first. `walking` contains the
// containers on the current path, so a cycle stops the walk. `budget` bounds
// the total visits, because shared references can make a small pickle an
// exponentially large tree.
function collectTensors(
  value: unknown,
  name: string,
  found: Map<string, SavedTensor>,
  walking: Set<object>,
  budget: { visits: number },
): void {
  budget.visits -= 1;
  if (budget.visits < 0) {
    throw new CheckpointError(
      `${OP}: the saved object repeats shared containers too often to flatten`,
    );
  }
  if (walking.size > MAX_NESTING) {
    throw new CheckpointError(
      `${OP}: the saved object nests containers deeper than ${MAX_NESTING} ` +
        `levels at '${name.slice(0, 80)}'`,
    );
  }
  if (value instanceof SavedTensor) {
    if (found.has(name)) {
      throw new CheckpointError(
        `${OP}: two tensors flatten to the name '${name}'`,
      );
    }
    found.set(name, value);
    return;
  }
  const children = containerItems(value);
  if (children === null || walking.has(value as object)) return;
  walking.add(value as object);
  for (const [key, child] of children) {
    const childName = keyName(key, name, child);
    if (childName === null) continue;
    const path = name === '' ? childName : `${name}.${childName}`;
    collectTensors(child, path, found, walking, budget);
  }
  walking.delete(value as object);
}

function containerItems(value: unknown): Iterable<[unknown, unknown]> | null {
  if (value instanceof PickleDict) return value.entries;
  if (value instanceof PickleTuple) return value.items.entries();
  if (Array.isArray(value)) return value.entries();
  return null;
}

// Returns the name part of a dict key, or null to skip an entry whose key
// cannot be a name and whose value cannot contain tensors.
function keyName(key: unknown, parent: string, child: unknown): string | null {
  if (typeof key === 'string') return key;
  if (typeof key === 'number' || typeof key === 'bigint') return String(key);
  if (typeof key === 'boolean') return key ? 'True' : 'False';
  if (key === null) return 'None';
  const holdsTensors =
    child instanceof SavedTensor || containerItems(child) !== null;
  if (!holdsTensors) return null;
  throw new CheckpointError(
    `${OP}: dict '${parent}' has a key that is ${describe(key)}; only ` +
      `str, int, bool and None keys can name tensors`,
  );
}

// Storage files, each read and checked once however many tensors share it.
class StorageFiles {
  private readonly cache = new Map<string, Uint8Array>();

  constructor(
    private readonly bytes: Uint8Array,
    private readonly entries: ReadonlyMap<string, ZipEntry>,
    private readonly archive: string,
    private readonly verify: boolean,
  ) {}

  read(tensor: SavedTensor): Uint8Array {
    const { key, dtype, size, typeName } = tensor.storage;
    const cached = this.cache.get(key);
    if (cached !== undefined) return cached;
    const name = `${this.archive}/data/${key}`;
    const entry = this.entries.get(name);
    if (entry === undefined) {
      throw new CheckpointError(
        `${OP}: storage file ${name} is missing from the archive`,
      );
    }
    const data = readZipEntry(this.bytes, entry, OP, this.verify);
    const expected = size * dtypeBytes(dtype);
    if (data.length !== expected) {
      throw new CheckpointError(
        `${OP}: storage file ${name} has ${data.length} bytes but its ` +
          `${typeName} of ${size} elements needs ${expected}`,
      );
    }
    this.cache.set(key, data);
    return data;
  }
}

/**
 * Copies a strided view out of its storage bytes into contiguous row-major
 * bytes, after checking that every element it reaches lies in the storage.
 */
function gatherTensor(
  name: string,
  tensor: SavedTensor,
  storage: Uint8Array,
): Uint8Array {
  const { shape, stride, storageOffset } = tensor;
  const itemBytes = dtypeBytes(tensor.storage.dtype);
  const count = elementCount(`${OP}: tensor '${name}'`, shape);
  if (count === 0) return new Uint8Array(0);

  let lastIndex = storageOffset;
  for (let d = 0; d < shape.length; d++) {
    lastIndex += (shape[d] - 1) * stride[d];
  }
  if (lastIndex >= tensor.storage.size) {
    throw new CheckpointError(
      `${OP}: tensor '${name}' ${formatShape(shape)} with stride ` +
        `${formatShape(stride)} and offset ${storageOffset} reaches ` +
        `element ${lastIndex} of a storage of ${tensor.storage.size}`,
    );
  }
  if (isContiguous(shape, stride)) {
    const begin = storageOffset * itemBytes;
    return storage.subarray(begin, begin + count * itemBytes);
  }

  const out = new Uint8Array(count * itemBytes);
  const rank = shape.length;
  const innerSize = shape[rank - 1];
  const innerStride = stride[rank - 1];
  const index = new Array<number>(rank).fill(0);
  let source = storageOffset;
  let target = 0;
  for (let row = 0; row < count / innerSize; row++) {
    if (innerStride === 1) {
      const begin = source * itemBytes;
      out.set(storage.subarray(begin, begin + innerSize * itemBytes), target);
      target += innerSize * itemBytes;
    } else {
      for (let i = 0; i < innerSize; i++) {
        const from = (source + i * innerStride) * itemBytes;
        for (let b = 0; b < itemBytes; b++) out[target++] = storage[from + b];
      }
    }
    // Advance the row index over the outer dims, last fastest.
    for (let d = rank - 2; d >= 0; d--) {
      index[d] += 1;
      source += stride[d];
      if (index[d] < shape[d]) break;
      source -= stride[d] * shape[d];
      index[d] = 0;
    }
  }
  return out;
}

function isContiguous(
  shape: readonly number[],
  stride: readonly number[],
): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== expected) return false;
    expected *= shape[d];
  }
  return true;
}
