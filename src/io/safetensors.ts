// Hugging Face safetensors files: read and write.
//
// Layout: an 8-byte little-endian unsigned header length N, then N bytes of
// UTF-8 JSON, then the data section. The JSON maps each tensor name to
// {"dtype", "shape", "data_offsets": [begin, end]}, with offsets in bytes
// relative to the data section, and may hold "__metadata__", a map of
// strings to strings. Tensor data is little-endian and row-major, and the
// tensors tile the data section exactly: no gaps, no overlap, no trailing
// bytes.

import { CheckpointError } from './checkpoint-error.js';
import {
  checkHostTensor,
  decodeElements,
  dtypeBytes,
  elementCount,
  encodeElements,
  formatShape,
  type HostDtype,
  type HostTensor,
} from './host-tensor.js';
import {
  JsonSyntaxError,
  parseStrictJson,
  type JsonValue,
} from './strict-json.js';

/** The header size limit of the reference implementation (100 MB). */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = '__metadata__';

const DTYPE_CODES: Readonly<Record<HostDtype, string>> = {
  float64: 'F64',
  float32: 'F32',
  float16: 'F16',
  bfloat16: 'BF16',
  int64: 'I64',
  uint64: 'U64',
  int32: 'I32',
  uint32: 'U32',
  int16: 'I16',
  uint16: 'U16',
  int8: 'I8',
  uint8: 'U8',
  bool: 'BOOL',
};

const DTYPES_BY_CODE = new Map<string, HostDtype>(
  Object.entries(DTYPE_CODES).map(([dtype, code]) => [
    code,
    dtype as HostDtype,
  ]),
);

// Codes the format defines that have no HostTensor array type here.
const UNSUPPORTED_CODES = new Set([
  'F8_E4M3',
  'F8_E5M2',
  'F8_E8M0',
  'F6_E2M3',
  'F6_E3M2',
  'F4',
  'C64',
]);

export type SafetensorsMetadata = Record<string, string>;

export interface SafetensorsFile {
  tensors: Map<string, HostTensor>;
  /** The "__metadata__" entry, or null when the header has none. */
  metadata: SafetensorsMetadata | null;
}

interface TensorEntry {
  name: string;
  dtype: HostDtype;
  shape: number[];
  begin: number;
  end: number;
}

/** Reads the tensors of a safetensors file, in header order. */
export function readSafetensors(bytes: Uint8Array): Map<string, HostTensor> {
  return readSafetensorsWithMetadata(bytes).tensors;
}

/**
 * Reads a safetensors file's tensors and its "__metadata__" strings. Throws
 * CheckpointError when the file breaks any rule of the format.
 */
export function readSafetensorsWithMetadata(
  bytes: Uint8Array,
): SafetensorsFile {
  const headerLength = readHeaderLength(bytes);
  const header = parseHeader(bytes.subarray(8, 8 + headerLength));
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;

  let metadata: SafetensorsMetadata | null = null;
  const entries: TensorEntry[] = [];
  for (const [name, value] of header) {
    if (name === METADATA_KEY) metadata = parseMetadata(value);
    else entries.push(parseTensorEntry(name, value, dataLength));
  }
  checkTiling(entries, dataLength);

  const tensors = new Map<string, HostTensor>();
  for (const { name, dtype, shape, begin, end } of entries) {
    const raw = bytes.subarray(dataStart + begin, dataStart + end);
    tensors.set(name, { dtype, shape, data: decodeElements(dtype, raw) });
  }
  return { tensors, metadata };
}

/**
 * Writes tensors as a safetensors file. The output is deterministic. Header
 * keys are sorted by name, with "__metadata__" first. The data section orders
 * tensors by element size, largest first, then by name, so every tensor starts
 * at a multiple of its element size. The header is padded with spaces to a
 * multiple of 8 bytes.
 */
export function writeSafetensors(
  tensors: ReadonlyMap<string, HostTensor>,
  metadata?: SafetensorsMetadata | ReadonlyMap<string, string>,
): Uint8Array {
  const op = 'writeSafetensors';
  for (const [name, tensor] of tensors) {
    if (name === METADATA_KEY) {
      throw new CheckpointError(
        `${op}: '${METADATA_KEY}' is reserved for metadata and cannot ` +
          `name a tensor`,
      );
    }
    checkHostTensor(op, name, tensor);
  }

  const layout = layoutData(tensors);
  const json = formatHeader(op, tensors, layout, metadata);
  const headerLength = Math.ceil(json.length / 8) * 8;
  if (headerLength > SAFETENSORS_MAX_HEADER_BYTES) {
    throw new CheckpointError(
      `${op}: the header would take ${headerLength} bytes, over the ` +
        `${SAFETENSORS_MAX_HEADER_BYTES}-byte limit readers accept`,
    );
  }

  const out = new Uint8Array(8 + headerLength + layout.dataLength);
  const view = new DataView(out.buffer);
  view.setUint32(0, headerLength, true);
  view.setUint32(4, 0, true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  for (const [name, raw] of layout.encoded) {
    out.set(raw, 8 + headerLength + layout.offsets.get(name)![0]);
  }
  return out;
}

interface DataLayout {
  /** Encoded tensor bytes in data-section order. */
  encoded: Map<string, Uint8Array>;
  offsets: Map<string, [number, number]>;
  dataLength: number;
}

// Larger elements first, then by name, so each tensor's offset is a multiple
// of its element size.
function layoutData(tensors: ReadonlyMap<string, HostTensor>): DataLayout {
  const elementSize = (name: string) => dtypeBytes(tensors.get(name)!.dtype);
  const order = [...tensors.keys()].sort(
    (a, b) => elementSize(b) - elementSize(a) || compareNames(a, b),
  );
  const layout: DataLayout = {
    encoded: new Map(),
    offsets: new Map(),
    dataLength: 0,
  };
  for (const name of order) {
    const raw = encodeElements(tensors.get(name)!);
    const begin = layout.dataLength;
    layout.encoded.set(name, raw);
    layout.offsets.set(name, [begin, begin + raw.length]);
    layout.dataLength = begin + raw.length;
  }
  return layout;
}

function formatHeader(
  op: string,
  tensors: ReadonlyMap<string, HostTensor>,
  layout: DataLayout,
  metadata: SafetensorsMetadata | ReadonlyMap<string, string> | undefined,
): Uint8Array {
  const parts: string[] = [];
  if (metadata !== undefined) parts.push(formatMetadata(op, metadata));
  for (const name of [...tensors.keys()].sort(compareNames)) {
    const { dtype, shape } = tensors.get(name)!;
    const [begin, end] = layout.offsets.get(name)!;
    parts.push(
      `${JSON.stringify(name)}:{"dtype":"${DTYPE_CODES[dtype]}",` +
        `"shape":[${shape.join(',')}],"data_offsets":[${begin},${end}]}`,
    );
  }
  return new TextEncoder().encode(`{${parts.join(',')}}`);
}

function readHeaderLength(bytes: Uint8Array): number {
  const op = 'readSafetensors';
  if (bytes.length < 8) {
    throw new CheckpointError(
      `${op}: file is ${bytes.length} bytes, too short for the 8-byte ` +
        `header length`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, 8);
  const length = view.getUint32(4, true) * 2 ** 32 + view.getUint32(0, true);
  if (length > SAFETENSORS_MAX_HEADER_BYTES) {
    throw new CheckpointError(
      `${op}: header length ${length} exceeds the limit of ` +
        `${SAFETENSORS_MAX_HEADER_BYTES} bytes; the file is not ` +
        `safetensors or is corrupt`,
    );
  }
  if (8 + length > bytes.length) {
    throw new CheckpointError(
      `${op}: header length ${length} is larger than the ${bytes.length - 8} ` +
        `bytes after it; the file is truncated or not safetensors`,
    );
  }
  return length;
}

function parseHeader(headerBytes: Uint8Array): Map<string, JsonValue> {
  const op = 'readSafetensors';
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw new CheckpointError(`${op}: header is not valid UTF-8`);
  }
  // Stricter than the reference reader, which leaves this check disabled:
  // every writer of the format starts the header with '{'.
  if (!text.startsWith('{')) {
    throw new CheckpointError(
      `${op}: header must start with '{', got ` +
        JSON.stringify(text.slice(0, 16)),
    );
  }
  let header: JsonValue;
  try {
    header = parseStrictJson(text);
  } catch (error) {
    if (!(error instanceof JsonSyntaxError)) throw error;
    throw new CheckpointError(
      `${op}: header is invalid JSON: ${error.message}`,
    );
  }
  if (!(header instanceof Map)) {
    throw new CheckpointError(`${op}: header must be a JSON object`);
  }
  return header;
}

function parseMetadata(value: JsonValue): SafetensorsMetadata {
  const op = 'readSafetensors';
  if (!(value instanceof Map)) {
    throw new CheckpointError(
      `${op}: '${METADATA_KEY}' must be an object of strings`,
    );
  }
  for (const [key, item] of value) {
    if (typeof item !== 'string') {
      throw new CheckpointError(
        `${op}: '${METADATA_KEY}' value of ${JSON.stringify(key)} must ` +
          `be a string, got ${describeJson(item)}`,
      );
    }
  }
  return Object.fromEntries(value as Map<string, string>);
}

function parseTensorEntry(
  name: string,
  value: JsonValue,
  dataLength: number,
): TensorEntry {
  const where = `readSafetensors: tensor '${name}'`;
  if (!(value instanceof Map)) {
    throw new CheckpointError(
      `${where} must be an object, got ${describeJson(value)}`,
    );
  }
  for (const key of value.keys()) {
    if (key !== 'dtype' && key !== 'shape' && key !== 'data_offsets') {
      throw new CheckpointError(
        `${where} has unknown field ${JSON.stringify(key)}`,
      );
    }
  }

  const dtype = parseDtype(where, value.get('dtype'));
  const shape = parseIntegers(where, 'shape', value.get('shape'));
  const offsets = parseIntegers(
    where,
    'data_offsets',
    value.get('data_offsets'),
  );
  if (offsets.length !== 2 || offsets[0] > offsets[1]) {
    throw new CheckpointError(
      `${where}: data_offsets must be [begin, end] with begin <= end, ` +
        `got ${formatShape(offsets)}`,
    );
  }
  const [begin, end] = offsets;

  if (end > dataLength) {
    throw new CheckpointError(
      `${where}: data_offsets [${begin},${end}] are out of range for the ` +
        `${dataLength}-byte data section`,
    );
  }
  const expectedBytes = elementCount(where, shape) * dtypeBytes(dtype);
  if (expectedBytes !== end - begin) {
    throw new CheckpointError(
      `${where}: shape ${formatShape(shape)} of ${DTYPE_CODES[dtype]} needs ` +
        `${expectedBytes} bytes but data_offsets [${begin},${end}] ` +
        `span ${end - begin}`,
    );
  }
  return { name, dtype, shape, begin, end };
}

function parseDtype(where: string, value: JsonValue | undefined): HostDtype {
  if (typeof value !== 'string') {
    throw new CheckpointError(
      `${where}: dtype must be a string, got ${describeJson(value)}`,
    );
  }
  const dtype = DTYPES_BY_CODE.get(value);
  if (dtype !== undefined) return dtype;
  const known = [...DTYPES_BY_CODE.keys()].join(', ');
  if (UNSUPPORTED_CODES.has(value)) {
    throw new CheckpointError(
      `${where}: dtype ${value} is not supported; supported dtypes: ${known}`,
    );
  }
  throw new CheckpointError(
    `${where}: unknown dtype ${JSON.stringify(value)}; ` +
      `expected one of ${known}`,
  );
}

function parseIntegers(
  where: string,
  field: string,
  value: JsonValue | undefined,
): number[] {
  const valid =
    Array.isArray(value) &&
    value.every(
      (item) =>
        typeof item === 'number' && Number.isSafeInteger(item) && item >= 0,
    );
  if (!valid) {
    throw new CheckpointError(
      `${where}: ${field} must be an array of non-negative integers, ` +
        `got ${describeJson(value)}`,
    );
  }
  return value as number[];
}

// The tensors must cover [0, dataLength) exactly once. The reference
// implementation (huggingface/safetensors, Metadata::validate) rejects gaps,
// overlap and uncovered trailing bytes the same way.
function checkTiling(
  entries: readonly TensorEntry[],
  dataLength: number,
): void {
  const op = 'readSafetensors';
  const sorted = [...entries].sort(
    (a, b) => a.begin - b.begin || a.end - b.end,
  );
  let covered = 0;
  let previous: TensorEntry | null = null;
  for (const entry of sorted) {
    if (entry.begin < covered) {
      throw new CheckpointError(
        `${op}: tensor '${entry.name}' data_offsets ` +
          `[${entry.begin},${entry.end}] overlap tensor ` +
          `'${previous!.name}' [${previous!.begin},${previous!.end}]`,
      );
    }
    if (entry.begin > covered) {
      throw new CheckpointError(
        `${op}: data bytes ${covered} to ${entry.begin} belong to no tensor ` +
          `(gap before tensor '${entry.name}')`,
      );
    }
    covered = entry.end;
    previous = entry;
  }
  if (covered !== dataLength) {
    throw new CheckpointError(
      `${op}: the tensors cover ${covered} of the ${dataLength} data bytes; ` +
        `the last ${dataLength - covered} bytes belong to no tensor`,
    );
  }
}

function formatMetadata(
  op: string,
  metadata: SafetensorsMetadata | ReadonlyMap<string, string>,
): string {
  const entries =
    metadata instanceof Map ? [...metadata] : Object.entries(metadata);
  for (const [key, value] of entries) {
    if (typeof value !== 'string') {
      throw new CheckpointError(
        `${op}: metadata value of ${JSON.stringify(key)} must be a ` +
          `string, got ${typeof value}`,
      );
    }
  }
  entries.sort(([a], [b]) => compareNames(a, b));
  const body = entries
    .map(([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value)}`)
    .join(',');
  return `"${METADATA_KEY}":{${body}}`;
}

// Code-unit order, the same in every locale.
function compareNames(a: string, b: string): number {
  if (a < b) return -1;
  if (a > b) return 1;
  return 0;
}

function describeJson(value: JsonValue | undefined): string {
  if (value === undefined) return 'nothing';
  if (value instanceof Map) return 'an object';
  const text = JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}
