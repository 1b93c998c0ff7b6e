// Checkpoint formats: safetensors read/write, PyTorch .pth reading, and the
// load report. Pure CPU code, so no device is needed.
//
// The .pth fixtures and expected.json come from
// scripts/make-torch-fixtures.py (torch.save in PyTorch 1.13).

import { readFileSync } from 'node:fs';
import { unzipSync, zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import {
  CheckpointError,
  LoadReportError,
  loadCheckpoint,
  mapCheckpointKey,
  readSafetensors,
  readSafetensorsWithMetadata,
  readTorchCheckpoint,
  toFloat32,
  writeSafetensors,
  type HostTensor,
} from '../src/index.js';
import {
  bfloat16BitsToFloat32Bits,
  float16BitsToFloat32Bits,
  float32BitsToBfloat16Bits,
  float32BitsToFloat16Bits,
} from '../src/io/float16.js';
import { unpickle } from '../src/io/pickle.js';
import { crc32 } from '../src/io/zip.js';
import { findTorchGlobal, loadTorchPersistentId } from '../src/io/torch-globals.js';
import { Random } from '../src/random.js';

const FIXTURES = new URL('./fixtures/torch/', import.meta.url);

function fixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(new URL(name, FIXTURES)));
}

interface ExpectedTensor {
  dtype: string;
  shape: number[];
  values: (number | string)[];
}

const EXPECTED = JSON.parse(
  readFileSync(new URL('expected.json', FIXTURES), 'utf8'),
) as Record<string, Record<string, ExpectedTensor>>;

/** Runs fn and returns the CheckpointError it throws; fails otherwise. */
function checkpointError(fn: () => unknown): CheckpointError {
  try {
    fn();
  } catch (error) {
    if (error instanceof CheckpointError) return error;
    throw new Error(`expected a CheckpointError, got ${String(error)}`, { cause: error });
  }
  throw new Error('expected a CheckpointError, but nothing was thrown');
}

function expectTensorEqual(name: string, got: HostTensor | undefined, want: ExpectedTensor): void {
  expect(got, `${name}: present`).toBeDefined();
  expect(got!.dtype, `${name}: dtype`).toBe(want.dtype);
  expect(got!.shape, `${name}: shape`).toEqual(want.shape);
  const values = Array.from(got!.data as ArrayLike<number | bigint>, (v) =>
    typeof v === 'bigint' ? v.toString() : v,
  );
  expect(values, `${name}: values`).toEqual(want.values);
}

// Pickle opcodes written by hand, for checkpoints torch would not write.
class PickleBuilder {
  private readonly bytes: number[] = [0x80, 0x02];

  raw(...bytes: number[]): this {
    this.bytes.push(...bytes);
    return this;
  }

  op(text: string): this {
    for (const c of text) this.bytes.push(c.charCodeAt(0));
    return this;
  }

  text(value: string): this {
    const utf8 = new TextEncoder().encode(value);
    this.op('X').raw(...u32(utf8.length), ...utf8);
    return this;
  }

  int(value: number): this {
    return this.op('J').raw(...u32(value));
  }

  global(module: string, name: string): this {
    return this.op(`c${module}\n${name}\n`);
  }

  ints(values: number[]): this {
    this.op('(');
    for (const value of values) this.int(value);
    return this.op('t');
  }

  /** Appends a _rebuild_tensor_v2 call on storage `key` (FloatStorage by default). */
  tensor(
    key: string,
    size: number,
    offset: number,
    shape: number[],
    stride: number[],
    type = 'FloatStorage',
  ): this {
    this.global('torch._utils', '_rebuild_tensor_v2').op('((');
    this.text('storage').global('torch', type).text(key).text('cpu').int(size).op('tQ');
    this.int(offset).ints(shape).ints(stride).op('\x89}tR');
    return this;
  }

  build(): Uint8Array {
    return Uint8Array.from([...this.bytes, 0x2e]);
  }
}

function u32(value: number): number[] {
  return [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff];
}

/** Builds a zip in torch.save layout; level 0 stores entries as torch does. */
function torchZip(
  pickle: Uint8Array,
  storages: Record<string, Uint8Array>,
  level: 0 | 6 = 0,
): Uint8Array {
  const files: Record<string, Uint8Array> = { 'archive/data.pkl': pickle };
  for (const [key, data] of Object.entries(storages)) files[`archive/data/${key}`] = data;
  files['archive/version'] = new TextEncoder().encode('3\n');
  return zipSync(files, { level });
}

function float32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}

function singleTensorDict(
  shape: number[],
  stride: number[],
  offset: number,
  size: number,
): Uint8Array {
  return new PickleBuilder()
    .global('collections', 'OrderedDict')
    .op(')R(')
    .text('weight')
    .tensor('0', size, offset, shape, stride)
    .op('u')
    .build();
}

describe('torch checkpoint fixtures', () => {
  for (const file of ['float32.pth', 'dtypes.pth', 'nested.pth']) {
    it(`${file} loads exactly`, () => {
      const tensors = readTorchCheckpoint(fixture(file));
      const expected = EXPECTED[file];
      expect([...tensors.keys()].sort()).toEqual(Object.keys(expected).sort());
      for (const [name, want] of Object.entries(expected)) {
        expectTensorEqual(`${file} ${name}`, tensors.get(name), want);
      }
    });
  }

  it('float32.pth keeps state dict order', () => {
    const names = [...readTorchCheckpoint(fixture('float32.pth')).keys()];
    expect(names.slice(0, 4)).toEqual(['0.weight', '0.bias', '1.weight', '1.bias']);
  });

  it('views own their data', () => {
    const tensors = readTorchCheckpoint(fixture('float32.pth'));
    const base = tensors.get('base')!.data as Float32Array;
    const slice = tensors.get('offset_slice')!.data as Float32Array;
    slice[0] = 100;
    expect(base[3]).toBe(-0.5);
  });

  it('root option selects a sub-dict', () => {
    const tensors = readTorchCheckpoint(fixture('nested.pth'), { root: 'model' });
    expect([...tensors.keys()]).toEqual(['weight', 'bias']);
    expectTensorEqual('weight', tensors.get('weight'), EXPECTED['nested.pth']['model.weight']);
  });

  it('missing root lists the keys', () => {
    const error = checkpointError(() =>
      readTorchCheckpoint(fixture('nested.pth'), { root: 'state_dict' }),
    );
    expect(error.message).toContain("root 'state_dict' not found");
    expect(error.message).toContain('model, epoch, name, optimizer');
  });

  it('deflated entries read the same', () => {
    const files = unzipSync(fixture('float32.pth'));
    const deflated = zipSync(files, { level: 6 });
    const stored = readTorchCheckpoint(fixture('float32.pth'));
    const fromDeflated = readTorchCheckpoint(deflated);
    expect([...fromDeflated.keys()]).toEqual([...stored.keys()]);
    for (const [name, tensor] of stored) {
      expect(fromDeflated.get(name), name).toEqual(tensor);
    }
  });
});

describe('torch checkpoint errors', () => {
  it('legacy format names the zip option', () => {
    const error = checkpointError(() => readTorchCheckpoint(fixture('legacy.pth')));
    expect(error.message).toContain('legacy torch.save format');
    expect(error.message).toContain('_use_new_zipfile_serialization=True');
  });

  it('unknown global is named', () => {
    const error = checkpointError(() => readTorchCheckpoint(fixture('custom-class.pth')));
    expect(error.message).toContain("global '__main__.Opaque' is not allowed");
    expect(error.message).toContain('(GLOBAL)');
  });

  it('code-running global is rejected', () => {
    const pickle = new PickleBuilder().global('os', 'system').text('echo hi').op('\x85R').build();
    const error = checkpointError(() => readTorchCheckpoint(torchZip(pickle, {})));
    expect(error.message).toContain("global 'os.system' is not allowed");
  });

  it('TorchScript global gets a hint', () => {
    const pickle = new PickleBuilder().global('__torch__.model', 'Net').build();
    const error = checkpointError(() => readTorchCheckpoint(torchZip(pickle, {})));
    expect(error.message).toContain('TorchScript archive');
  });

  it('complex dtype is unsupported', () => {
    const error = checkpointError(() => readTorchCheckpoint(fixture('complex.pth')));
    expect(error.message).toContain('torch.ComplexFloatStorage (dtype complex64) is not supported');
  });

  it('wrong magic shows the bytes', () => {
    const error = checkpointError(() =>
      readTorchCheckpoint(new TextEncoder().encode('hello, world')),
    );
    expect(error.message).toContain('not a PyTorch zip checkpoint');
    expect(error.message).toContain('68 65 6c 6c');
  });

  it('safetensors input gets a hint', () => {
    const tensor: HostTensor = { dtype: 'float32', shape: [1], data: new Float32Array(1) };
    const file = writeSafetensors(new Map([['a', tensor]]));
    const error = checkpointError(() => readTorchCheckpoint(file));
    expect(error.message).toContain('readSafetensors');
  });

  it('every truncation raises CheckpointError', () => {
    for (const file of ['float32.pth', 'dtypes.pth', 'nested.pth']) {
      const bytes = fixture(file);
      const step = file === 'float32.pth' ? 1 : 7;
      for (let length = 0; length < bytes.length; length += step) {
        const error = checkpointError(() => readTorchCheckpoint(bytes.subarray(0, length)));
        expect(error.message, `${file} cut at ${length}`).toMatch(/^readTorchCheckpoint: /);
      }
    }
  });

  it('corrupt storage fails the CRC check', () => {
    const bytes = fixture('float32.pth').slice();
    // Flip one bit inside the bytes of the first storage.
    const files = unzipSync(bytes);
    const storage = files['float32/data/0'];
    const at = findSubarray(bytes, storage);
    bytes[at + 5] ^= 0x40;
    const error = checkpointError(() => readTorchCheckpoint(bytes));
    expect(error.message).toContain("zip entry 'float32/data/0' fails its CRC-32 check");
    expect(() => readTorchCheckpoint(bytes, { verifyChecksums: false })).not.toThrow();
  });

  it('random corruption never escapes CheckpointError', () => {
    const random = new Random(7);
    const original = fixture('float32.pth');
    let loaded = 0;
    for (let trial = 0; trial < 400; trial++) {
      const bytes = original.slice();
      const flips = 1 + Math.floor(random.uniform() * 4);
      for (let i = 0; i < flips; i++) {
        const at = Math.floor(random.uniform() * bytes.length);
        bytes[at] = Math.floor(random.uniform() * 256);
      }
      try {
        readTorchCheckpoint(bytes, { verifyChecksums: false });
        loaded += 1;
      } catch (error) {
        expect(error, `trial ${trial}`).toBeInstanceOf(CheckpointError);
      }
    }
    // Flips in tensor data still load, so some trials must succeed.
    expect(loaded).toBeGreaterThan(0);
  });

  it('random pickles never escape CheckpointError', () => {
    const random = new Random(11);
    const hooks = { findGlobal: findTorchGlobal, persistentLoad: loadTorchPersistentId };
    // Opcodes a state dict uses, so random streams get past the first byte.
    const alphabet = [...'(}q)RXcQKJMth\x85\x86\x87\x88\x89Nu]eabjs.'].map((c) => c.charCodeAt(0));
    for (let trial = 0; trial < 2000; trial++) {
      const length = 1 + Math.floor(random.uniform() * 40);
      const bytes = new Uint8Array(length + 2);
      bytes[0] = 0x80;
      bytes[1] = 0x02;
      for (let i = 2; i < bytes.length; i++) {
        bytes[i] =
          random.uniform() < 0.7
            ? alphabet[Math.floor(random.uniform() * alphabet.length)]
            : Math.floor(random.uniform() * 256);
      }
      try {
        unpickle(bytes, hooks, 'fuzz');
      } catch (error) {
        expect(error, `trial ${trial}`).toBeInstanceOf(CheckpointError);
      }
    }
  });

  it('stride past the storage is rejected', () => {
    const pickle = singleTensorDict([2, 3], [3, 2], 0, 6);
    const error = checkpointError(() =>
      readTorchCheckpoint(torchZip(pickle, { '0': float32Bytes([0, 1, 2, 3, 4, 5]) })),
    );
    expect(error.message).toContain(
      "tensor 'weight' [2,3] with stride [3,2] and offset 0 reaches element 7 of a storage of 6",
    );
  });

  it('storage file size must match', () => {
    const pickle = singleTensorDict([4], [1], 0, 4);
    const error = checkpointError(() =>
      readTorchCheckpoint(torchZip(pickle, { '0': float32Bytes([1, 2, 3]) })),
    );
    expect(error.message).toContain(
      'storage file archive/data/0 has 12 bytes but its FloatStorage of 4 elements needs 16',
    );
  });

  it('missing storage file is named', () => {
    const pickle = singleTensorDict([1], [1], 0, 1);
    const error = checkpointError(() => readTorchCheckpoint(torchZip(pickle, {})));
    expect(error.message).toContain('storage file archive/data/0 is missing');
  });

  it('zero stride expands within maxBytes', () => {
    const pickle = singleTensorDict([3, 1000], [0, 0], 0, 1);
    const file = torchZip(pickle, { '0': float32Bytes([1.5]) });
    const tensor = readTorchCheckpoint(file).get('weight')!;
    expect(tensor.shape).toEqual([3, 1000]);
    expect((tensor.data as Float32Array).every((v) => v === 1.5)).toBe(true);
    const error = checkpointError(() => readTorchCheckpoint(file, { maxBytes: 4000 }));
    expect(error.message).toContain('past maxBytes (4000)');
  });

  it('big-endian byteorder is swapped', () => {
    const pickle = new PickleBuilder()
      .op('}(')
      .text('w')
      .tensor('0', 2, 0, [2], [1])
      .text('h')
      .tensor('1', 2, 0, [2], [1], 'HalfStorage')
      .op('u')
      .build();
    const w = new Uint8Array(8);
    new DataView(w.buffer).setFloat32(0, 1.25, false);
    new DataView(w.buffer).setFloat32(4, -3, false);
    const h = Uint8Array.from([0x3c, 0x00, 0xc0, 0x00]);
    const files = unzipSync(torchZip(pickle, { '0': w, '1': h }));
    files['archive/byteorder'] = new TextEncoder().encode('big');
    const tensors = readTorchCheckpoint(zipSync(files, { level: 0 }));
    expect(Array.from(tensors.get('w')!.data as Float32Array)).toEqual([1.25, -3]);
    expect(Array.from(tensors.get('h')!.data as Float32Array)).toEqual([1, -2]);
  });

  it('no data.pkl lists the entries', () => {
    const file = zipSync({ 'model/weights.bin': new Uint8Array(4) }, { level: 0 });
    const error = checkpointError(() => readTorchCheckpoint(file));
    expect(error.message).toContain('no <archive>/data.pkl entry');
    expect(error.message).toContain('model/weights.bin');
  });

  it('deep nesting is rejected', () => {
    // 100000 nested lists, each appended to the one before it.
    const depth = 100_000;
    const pickle = new PickleBuilder().op(']'.repeat(depth) + 'a'.repeat(depth - 1)).build();
    const error = checkpointError(() => readTorchCheckpoint(torchZip(pickle, {})));
    expect(error.message).toContain('nests containers deeper than 256 levels');
  });

  it('huge frozenset loads', () => {
    // FROZENSET of 300000 Nones, past the argument limit of a spread call.
    const pickle = new PickleBuilder().op('(' + 'N'.repeat(300_000) + '\x91').build();
    expect(readTorchCheckpoint(torchZip(pickle, {})).size).toBe(0);
  });

  it('pickle truncated before STOP', () => {
    const pickle = singleTensorDict([1], [1], 0, 1);
    const file = torchZip(pickle.subarray(0, pickle.length - 1), { '0': float32Bytes([1]) });
    const error = checkpointError(() => readTorchCheckpoint(file));
    expect(error.message).toContain('pickle data ends before STOP');
  });
});

function findSubarray(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  throw new Error('subarray not found');
}

// Safetensors files assembled from their parts, for the reader tests.
function safetensorsFile(
  header: string,
  data: Uint8Array = new Uint8Array(0),
  pad = true,
): Uint8Array {
  let json = new TextEncoder().encode(header);
  if (pad && json.length % 8 !== 0) {
    json = new TextEncoder().encode(header + ' '.repeat(8 - (json.length % 8)));
  }
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function allDtypeTensors(): Map<string, HostTensor> {
  // Zeros, one, max, subnormals, infinities, quiet and signalling NaNs.
  const halfBits = [
    0x0000, 0x8000, 0x3c00, 0x7bff, 0x0001, 0x03ff, 0x7c00, 0xfc00, 0x7e00, 0x7d01, 0xfe7f,
  ];
  const half = new Float32Array(halfBits.length);
  new Uint32Array(half.buffer).set(halfBits.map(float16BitsToFloat32Bits));
  const brainBits = [
    0x0000, 0x8000, 0x3f80, 0x7f7f, 0x0001, 0x7f80, 0xff80, 0x7fc0, 0x7f81, 0xc049,
  ];
  const brain = new Float32Array(brainBits.length);
  new Uint32Array(brain.buffer).set(brainBits.map(bfloat16BitsToFloat32Bits));
  // prettier-ignore
  return new Map<string, HostTensor>([
    ['f64', { dtype: 'float64', shape: [2, 2], data: Float64Array.from([0.1, -0, 5e-324, Infinity]) }],
    ['f32', { dtype: 'float32', shape: [3], data: Float32Array.from([1.5, -0, 3.4e38]) }],
    ['f16', { dtype: 'float16', shape: [halfBits.length], data: half }],
    ['bf16', { dtype: 'bfloat16', shape: [brainBits.length], data: brain }],
    ['i64', { dtype: 'int64', shape: [3], data: BigInt64Array.from([-(2n ** 63n), 2n ** 62n + 1n, -1n]) }],
    ['u64', { dtype: 'uint64', shape: [2], data: BigUint64Array.from([2n ** 64n - 1n, 0n]) }],
    ['i32', { dtype: 'int32', shape: [2], data: Int32Array.from([-(2 ** 31), 2 ** 31 - 1]) }],
    ['u32', { dtype: 'uint32', shape: [1], data: Uint32Array.from([2 ** 32 - 1]) }],
    ['i16', { dtype: 'int16', shape: [1, 2], data: Int16Array.from([-32768, 32767]) }],
    ['u16', { dtype: 'uint16', shape: [1], data: Uint16Array.from([65535]) }],
    ['i8', { dtype: 'int8', shape: [3], data: Int8Array.from([-128, 0, 127]) }],
    ['u8', { dtype: 'uint8', shape: [3, 1], data: Uint8Array.from([0, 1, 255]) }],
    ['flags', { dtype: 'bool', shape: [2], data: Uint8Array.from([1, 0]) }],
    ['scalar', { dtype: 'float32', shape: [], data: Float32Array.from([7]) }],
    ['empty', { dtype: 'float32', shape: [0, 5], data: new Float32Array(0) }],
  ]);
}

function bitsOf(tensor: HostTensor): number[] {
  const { data } = tensor;
  return Array.from(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

describe('safetensors', () => {
  it('round trip is bitwise exact', () => {
    const tensors = allDtypeTensors();
    const first = writeSafetensors(tensors, { format: 'pt', note: 'round trip' });
    const read = readSafetensorsWithMetadata(first);
    expect(read.metadata).toEqual({ format: 'pt', note: 'round trip' });
    for (const [name, tensor] of tensors) {
      const got = read.tensors.get(name)!;
      expect(got.dtype, name).toBe(tensor.dtype);
      expect(got.shape, name).toEqual(tensor.shape);
      expect(bitsOf(got), name).toEqual(bitsOf(tensor));
    }
    const second = writeSafetensors(read.tensors, read.metadata!);
    expect(Buffer.from(second).equals(Buffer.from(first))).toBe(true);
  });

  it('writer output follows the format', () => {
    const file = writeSafetensors(
      new Map<string, HostTensor>([
        ['b', { dtype: 'float16', shape: [1], data: Float32Array.from([1]) }],
        ['a', { dtype: 'float32', shape: [2], data: Float32Array.from([1, 2]) }],
      ]),
      { format: 'pt' },
    );
    const view = new DataView(file.buffer);
    const headerLength = Number(view.getBigUint64(0, true));
    expect(headerLength % 8).toBe(0);
    const header = new TextDecoder().decode(file.subarray(8, 8 + headerLength));
    expect(header.trimEnd()).toBe(
      '{"__metadata__":{"format":"pt"},' +
        '"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
        '"b":{"dtype":"F16","shape":[1],"data_offsets":[8,10]}}',
    );
    expect(header.slice(header.trimEnd().length)).toMatch(/^ *$/);
    expect(file.length).toBe(8 + headerLength + 10);
    expect(view.getFloat32(8 + headerLength + 4, true)).toBe(2);
    expect(view.getUint16(8 + headerLength + 8, true)).toBe(0x3c00);
  });

  it('reads a file built byte by byte', () => {
    // Header keys in an order writeSafetensors never uses, with the metadata
    // between tensors, and values written little-endian field by field.
    const data = new Uint8Array(8 + 6 + 2 + 1);
    const view = new DataView(data.buffer);
    view.setFloat64(0, -2.5, true);
    view.setInt16(8, -7, true);
    view.setInt16(10, 300, true);
    view.setInt16(12, 1, true);
    view.setUint16(14, 0x4049, true);
    data[16] = 1;

    const header =
      '{"x":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},' +
      '"__metadata__":{"source":"hand"},' +
      '"flag":{"dtype":"BOOL","shape":[1,1],"data_offsets":[16,17]},' +
      '"y":{"dtype":"I16","shape":[3],"data_offsets":[8,14]},' +
      '"z":{"dtype":"BF16","shape":[],"data_offsets":[14,16]}}';
    const file = safetensorsFile(header, data);
    expect(file.length).toBe(8 + 264 + data.length);

    const { tensors, metadata } = readSafetensorsWithMetadata(file);
    expect(metadata).toEqual({ source: 'hand' });
    expect([...tensors.keys()]).toEqual(['x', 'flag', 'y', 'z']);
    expect(tensors.get('x')).toEqual({
      dtype: 'float64',
      shape: [1],
      data: Float64Array.from([-2.5]),
    });
    expect(tensors.get('y')).toEqual({
      dtype: 'int16',
      shape: [3],
      data: Int16Array.from([-7, 300, 1]),
    });
    expect(tensors.get('z')).toEqual({
      dtype: 'bfloat16',
      shape: [],
      data: Float32Array.from([3.140625]),
    });
    expect(tensors.get('flag')).toEqual({
      dtype: 'bool',
      shape: [1, 1],
      data: Uint8Array.from([1]),
    });
  });

  it('reads an unpadded header and an empty file', () => {
    const header = '{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}';
    const tensors = readSafetensors(safetensorsFile(header, Uint8Array.from([4, 5]), false));
    expect(tensors.get('a')!.data).toEqual(Uint8Array.from([4, 5]));
    expect(readSafetensors(safetensorsFile('{}')).size).toBe(0);
    expect(readSafetensors(writeSafetensors(new Map())).size).toBe(0);
  });

  it('__proto__ is an ordinary name', () => {
    const tensors = new Map<string, HostTensor>([
      ['__proto__', { dtype: 'int8', shape: [1], data: Int8Array.from([3]) }],
    ]);
    const read = readSafetensors(writeSafetensors(tensors));
    expect(read.get('__proto__')!.data).toEqual(Int8Array.from([3]));
  });

  const f32 = (begin: number, end: number, shape = '[2]'): string =>
    `{"dtype":"F32","shape":${shape},"data_offsets":[${begin},${end}]}`;
  // [case, header JSON, data bytes, expected message part]
  // prettier-ignore
  const invalidHeaders: [string, string, number, string][] = [
    ['invalid JSON', `{"a":${f32(0, 8)}`, 8, 'header is invalid JSON: expected'],
    ['header not an object', '[1,2]', 0, "header must start with '{'"],
    ['unknown dtype', '{"a":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}}', 4, 'unknown dtype "F99"'],
    ['float8 dtype', '{"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}', 1, 'dtype F8_E4M3 is not supported'],
    ['offsets out of range', `{"a":${f32(0, 8)}}`, 4, 'data_offsets [0,8] are out of range for the 4-byte data section'],
    ['offsets reversed', `{"a":${f32(8, 0)}}`, 8, 'data_offsets must be [begin, end] with begin <= end'],
    ['overlap', `{"a":${f32(0, 8)},"b":${f32(4, 12)}}`, 12, "tensor 'b' data_offsets [4,12] overlap tensor 'a' [0,8]"],
    ['gap', `{"a":${f32(0, 8)},"b":${f32(12, 20)}}`, 20, "data bytes 8 to 12 belong to no tensor (gap before tensor 'b')"],
    ['trailing bytes', `{"a":${f32(0, 8)}}`, 12, 'the last 4 bytes belong to no tensor'],
    ['data without tensors', '{}', 4, 'the tensors cover 0 of the 4 data bytes'],
    ['shape product', `{"a":${f32(0, 8, '[3]')}}`, 8, 'shape [3] of F32 needs 12 bytes but data_offsets [0,8] span 8'],
    ['duplicate key', `{"a":${f32(0, 8)},"a":${f32(0, 8)}}`, 8, 'duplicate key "a"'],
    ['negative dim', `{"a":${f32(0, 8, '[-2]')}}`, 8, 'shape must be an array of non-negative integers'],
    ['fractional dim', `{"a":${f32(0, 8, '[2.5]')}}`, 8, 'shape must be an array of non-negative integers'],
    ['unknown field', '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1}}', 1, 'unknown field "x"'],
    ['missing dtype', '{"a":{"shape":[1],"data_offsets":[0,1]}}', 1, 'dtype must be a string, got nothing'],
    ['metadata value', '{"__metadata__":{"epoch":3}}', 0, "'__metadata__' value of \"epoch\" must be a string"],
    ['deep nesting', `{"a":${'['.repeat(100)}${']'.repeat(100)}}`, 0, 'nesting deeper than 64'],
  ];
  for (const [label, header, dataLength, message] of invalidHeaders) {
    it(`rejects ${label}`, () => {
      const file = safetensorsFile(header, new Uint8Array(dataLength));
      const error = checkpointError(() => readSafetensors(file));
      expect(error.message).toContain(message);
      expect(error.message).toMatch(/^readSafetensors: /);
    });
  }

  it('rejects an over-long header length', () => {
    const file = new Uint8Array(64);
    const view = new DataView(file.buffer);
    view.setBigUint64(0, 2n ** 40n, true);
    expect(checkpointError(() => readSafetensors(file)).message).toContain(
      'header length 1099511627776 exceeds the limit of 100000000 bytes',
    );
    view.setBigUint64(0, 100n, true);
    expect(checkpointError(() => readSafetensors(file)).message).toContain(
      'header length 100 is larger than the 56 bytes after it',
    );
    view.setBigUint64(0, 2n ** 64n - 1n, true);
    expect(checkpointError(() => readSafetensors(file)).message).toContain('exceeds the limit');
  });

  it('rejects a header that is not UTF-8', () => {
    const file = safetensorsFile('{"a":1}');
    file[10] = 0xff;
    expect(checkpointError(() => readSafetensors(file)).message).toContain(
      'header is not valid UTF-8',
    );
  });

  it('every truncation raises CheckpointError', () => {
    const file = writeSafetensors(allDtypeTensors(), { format: 'pt' });
    for (let length = 0; length < file.length; length++) {
      const error = checkpointError(() => readSafetensors(file.subarray(0, length)));
      expect(error.message, `cut at ${length}`).toMatch(/^readSafetensors: /);
    }
  });

  it('writer checks its tensors', () => {
    const writeError = (tensor: HostTensor, name = 'w') =>
      checkpointError(() => writeSafetensors(new Map([[name, tensor]]))).message;
    expect(writeError({ dtype: 'float32', shape: [2], data: new Float64Array(2) })).toContain(
      "tensor 'w' of dtype float32 needs its data in a Float32Array, got Float64Array",
    );
    expect(writeError({ dtype: 'int8', shape: [2, 2], data: new Int8Array(3) })).toContain(
      "tensor 'w' has shape [2,2] (4 elements) but 3 values",
    );
    const metadataName: HostTensor = { dtype: 'int8', shape: [1], data: new Int8Array(1) };
    expect(writeError(metadataName, '__metadata__')).toContain("'__metadata__' is reserved");
    const complex = { dtype: 'complex64' as 'float32', shape: [1], data: new Float32Array(1) };
    expect(writeError(complex)).toContain("unknown dtype 'complex64'");
  });

  it('writer output is independent of insertion order', () => {
    const tensors = allDtypeTensors();
    const reversed = new Map([...tensors].reverse());
    const forward = Buffer.from(writeSafetensors(tensors));
    expect(Buffer.from(writeSafetensors(reversed)).equals(forward)).toBe(true);
  });
});

describe('float16 and bfloat16 bits', () => {
  it('every half pattern round-trips', () => {
    const halfFailures: number[] = [];
    const brainFailures: number[] = [];
    for (let bits = 0; bits < 0x10000; bits++) {
      const half = float32BitsToFloat16Bits(float16BitsToFloat32Bits(bits));
      const brain = float32BitsToBfloat16Bits(bfloat16BitsToFloat32Bits(bits));
      if (half !== bits) halfFailures.push(bits);
      if (brain !== bits) brainFailures.push(bits);
    }
    expect(halfFailures, 'float16 patterns that changed').toEqual([]);
    expect(brainFailures, 'bfloat16 patterns that changed').toEqual([]);
  });

  it('half narrowing rounds to nearest even', () => {
    // Every finite non-negative half, in increasing order of value.
    const bits32 = new Uint32Array(1);
    const asFloat = new Float32Array(bits32.buffer);
    const halves: number[] = [];
    for (let bits = 0; bits < 0x7c00; bits++) {
      bits32[0] = float16BitsToFloat32Bits(bits);
      halves.push(asFloat[0]);
    }
    const random = new Random(3);
    const failures: string[] = [];
    for (let trial = 0; trial < 20000; trial++) {
      // Magnitudes from 2^-26 to 2^17, past both ends of the half range.
      const value = Math.fround(2 ** (random.uniform() * 43 - 26) * (1 + random.uniform()));
      asFloat[0] = value;
      const got = float32BitsToFloat16Bits(bits32[0]);
      const want = nearestHalf(halves, value);
      if (got !== want) {
        failures.push(`${value}: got 0x${got.toString(16)}, want 0x${want.toString(16)}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('half narrowing edge cases', () => {
    const bitsOfFloat = (value: number) => new Uint32Array(Float32Array.from([value]).buffer)[0];
    expect(float32BitsToFloat16Bits(bitsOfFloat(1 + 2 ** -11))).toBe(0x3c00);
    expect(float32BitsToFloat16Bits(bitsOfFloat(1 + 3 * 2 ** -11))).toBe(0x3c02);
    expect(float32BitsToFloat16Bits(bitsOfFloat(65519))).toBe(0x7bff);
    expect(float32BitsToFloat16Bits(bitsOfFloat(65520))).toBe(0x7c00);
    expect(float32BitsToFloat16Bits(bitsOfFloat(2 ** -25))).toBe(0);
    expect(float32BitsToFloat16Bits(bitsOfFloat(1.5 * 2 ** -25))).toBe(1);
    expect(float32BitsToFloat16Bits(bitsOfFloat(-Infinity))).toBe(0xfc00);
    expect(float32BitsToFloat16Bits(0x7f800001)).toBe(0x7e00);
    expect(float32BitsToBfloat16Bits(bitsOfFloat(1 + 2 ** -8))).toBe(0x3f80);
    expect(float32BitsToBfloat16Bits(bitsOfFloat(1 + 3 * 2 ** -8))).toBe(0x3f82);
    expect(float32BitsToBfloat16Bits(bitsOfFloat(3.4028235e38))).toBe(0x7f80);
    expect(float32BitsToBfloat16Bits(0x7f800001)).toBe(0x7fc0);
  });
});

// The half bits nearest to a non-negative value, ties to even, by search.
function nearestHalf(halves: number[], value: number): number {
  const max = halves[halves.length - 1];
  // Values at or past max + half an ulp (65520) round to infinity.
  if (value >= 65520) return 0x7c00;
  if (value >= max) return halves.length - 1;
  let low = 0;
  let high = halves.length - 1;
  while (high - low > 1) {
    const middle = (low + high) >> 1;
    if (halves[middle] <= value) low = middle;
    else high = middle;
  }
  const below = value - halves[low];
  const above = halves[high] - value;
  if (below < above) return low;
  if (above < below) return high;
  return low % 2 === 0 ? low : high;
}

describe('load report', () => {
  const tensor = (shape: number[]): HostTensor => ({
    dtype: 'float32',
    shape,
    data: new Float32Array(shape.reduce((a, b) => a * b, 1)),
  });
  const model = new Map<string, number[]>([
    ['patch.weight', [4, 3]],
    ['layers.0.weight', [4, 4]],
    ['layers.0.bias', [4]],
    ['neck.weight', [2, 4]],
  ]);

  it('matches identical names', () => {
    const tensors = new Map([...model].map(([name, shape]) => [name, tensor(shape)]));
    const report = loadCheckpoint(model, tensors);
    expect([...report.matched.keys()]).toEqual([...model.keys()]);
    expect(report.missing).toEqual([]);
    expect(report.unexpected).toEqual([]);
    expect(report.mismatched).toEqual([]);
  });

  it('mapping renames and drops keys', () => {
    const tensors = new Map([
      ['image_encoder.patch.weight', tensor([4, 3])],
      ['image_encoder.blocks.0.weight', tensor([4, 4])],
      ['image_encoder.blocks.0.bias', tensor([4])],
      ['image_encoder.neck.weight', tensor([2, 4])],
      ['mask_decoder.head.weight', tensor([9])],
    ]);
    const mapping = [
      [/^mask_decoder\./, null],
      ['^image_encoder\\.', ''],
      [/^blocks\.(\d+)\./, 'layers.$1.'],
    ] as const;
    expect(mapCheckpointKey('image_encoder.blocks.0.bias', mapping)).toBe('layers.0.bias');
    const report = loadCheckpoint(model, tensors, { mapping });
    expect([...report.matched.keys()].sort()).toEqual([...model.keys()].sort());
    expect(report.dropped).toEqual(['mask_decoder.head.weight']);
    expect(report.unexpected).toEqual([]);
  });

  it('names missing, unexpected and mismatched keys', () => {
    const tensors = new Map([
      ['patch.weight', tensor([3, 4])],
      ['layers.0.weight', tensor([4, 4])],
      ['layers.0.extra', tensor([1])],
    ]);
    let caught: unknown;
    try {
      loadCheckpoint(model, tensors);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(LoadReportError);
    const error = caught as LoadReportError;
    expect(error).toBeInstanceOf(CheckpointError);
    expect(error.message).toContain(
      '2 missing (in the model, not the checkpoint): layers.0.bias, neck.weight',
    );
    expect(error.message).toContain(
      '1 unexpected (in the checkpoint, not the model): layers.0.extra',
    );
    expect(error.message).toContain(
      '1 shape mismatched: patch.weight (model [4,3], checkpoint [3,4])',
    );
    expect(error.message).toContain('lenient: true to load the 1 matching tensors');
    expect(error.report.missing).toEqual(['layers.0.bias', 'neck.weight']);
    expect(error.report.mismatched).toEqual([
      { name: 'patch.weight', source: 'patch.weight', expected: [4, 3], actual: [3, 4] },
    ]);
  });

  it('lenient returns the report', () => {
    const tensors = new Map([['patch.weight', tensor([4, 3])], ['stray', tensor([1])]]);
    const report = loadCheckpoint(model, tensors, { lenient: true });
    expect([...report.matched.keys()]).toEqual(['patch.weight']);
    expect(report.unexpected).toEqual(['stray']);
    expect(report.missing).toEqual(['layers.0.weight', 'layers.0.bias', 'neck.weight']);
  });

  it('two keys for one name are duplicates', () => {
    const tensors = new Map([
      ['a.neck.weight', tensor([2, 4])],
      ['b.neck.weight', tensor([2, 4])],
    ]);
    const report = loadCheckpoint(model, tensors, { mapping: [[/^[ab]\./, '']], lenient: true });
    expect(report.matched.has('neck.weight')).toBe(true);
    expect(report.duplicates).toEqual(['b.neck.weight']);
  });

  it('accepts a module-like state dict', () => {
    const module = { stateDict: () => new Map([['w', { shape: [2] }]]) };
    const report = loadCheckpoint(module, new Map([['w', tensor([2])]]));
    expect(report.matched.get('w')!.shape).toEqual([2]);
  });

  it('invalid pattern names the rule', () => {
    const error = checkpointError(() =>
      loadCheckpoint(model, new Map(), { mapping: [['(', 'x']], lenient: true }),
    );
    expect(error.message).toContain('mapping rule 0 pattern "(" is an invalid regular expression');
  });

  it('loads real fixture names through a mapping', () => {
    const tensors = readTorchCheckpoint(fixture('nested.pth'));
    const expected = new Map([['encoder.weight', [2, 2]], ['encoder.bias', [2]]]);
    const report = loadCheckpoint(expected, tensors, {
      mapping: [[/^model\./, 'encoder.'], [/^(optimizer|history|parameter)\b/, null]],
    });
    expect(Array.from(toFloat32(report.matched.get('encoder.weight')!))).toEqual([1, 2, 3, 4]);
  });
});

describe('zip crc32', () => {
  it('matches the standard check value', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });

  it('matches a bitwise crc at every length', () => {
    const bitwise = (data: Uint8Array): number => {
      let crc = 0xffffffff;
      for (const byte of data) {
        crc ^= byte;
        for (let k = 0; k < 8; k++) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
      }
      return (crc ^ 0xffffffff) >>> 0;
    };
    const random = new Random(5);
    for (let length = 0; length < 40; length++) {
      const data = Uint8Array.from({ length }, () => random.integer(256));
      expect(crc32(data), `length ${length}`).toBe(bitwise(data));
    }
  });
});

describe('host tensor', () => {
  it('toFloat32 converts integer dtypes', () => {
    const long: HostTensor = { dtype: 'int64', shape: [2], data: BigInt64Array.from([-3n, 5n]) };
    const byte: HostTensor = { dtype: 'uint8', shape: [2], data: Uint8Array.from([0, 255]) };
    expect(Array.from(toFloat32(long))).toEqual([-3, 5]);
    expect(Array.from(toFloat32(byte))).toEqual([0, 255]);
    const same = Float32Array.from([1]);
    expect(toFloat32({ dtype: 'float16', shape: [1], data: same })).toBe(same);
  });
});
