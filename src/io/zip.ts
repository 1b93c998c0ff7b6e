// A read-only zip archive reader for checkpoint files, bounds-checked at every
// read so corrupt or truncated input raises CheckpointError.
//
// It reads the central directory (with zip64 records, which torch.save
// always writes) and returns stored entries as views into the input without
// copying. Local headers are used only to find where data starts, because
// torch.save writes them with zero sizes and a trailing data descriptor.
// Deflated entries, which torch never writes but a re-zipped file may hold,
// are inflated with fflate. fflate's unzipSync is not used for the archive
// itself: it copies every entry and its errors name no entry.
//
// NOTE: multi-disk archives and encrypted entries are rejected.

import { inflateSync } from 'fflate';
import { CheckpointError } from './checkpoint-error.js';

export interface ZipEntry {
  name: string;
  /** 0 for stored, 8 for deflate. */
  method: number;
  flags: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

const LOCAL_HEADER = 0x04034b50;
const CENTRAL_HEADER = 0x02014b50;
const END_OF_DIRECTORY = 0x06054b50;
const ZIP64_END_OF_DIRECTORY = 0x06064b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EXTRA_ID = 0x0001;
const LOCAL_HEADER_BYTES = 30;
const CENTRAL_HEADER_BYTES = 46;
const END_OF_DIRECTORY_BYTES = 22;
const ZIP64_END_OF_DIRECTORY_BYTES = 56;
const MAX_COMMENT_BYTES = 0xffff;
// Deflate expands at most about 1032 to 1, so a larger declared size is
// corrupt; checking first avoids allocating for it.
const MAX_DEFLATE_RATIO = 1032;

/**
 * Bounds-checked little-endian reads. Errors read "context: subject message",
 * where subject names the part being read, such as "zip entry 'a/data.pkl' ".
 */
class ByteReader {
  private readonly view: DataView;

  constructor(
    readonly bytes: Uint8Array,
    readonly context: string,
    readonly subject = '',
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  fail(message: string): never {
    throw new CheckpointError(`${this.context}: ${this.subject}${message}`);
  }

  check(offset: number, length: number, what: string): void {
    if (offset < 0 || length < 0 || offset + length > this.bytes.length) {
      this.fail(
        `${what} at byte ${offset} (${length} bytes) runs past the end ` +
          `of the ${this.bytes.length}-byte file; the file is truncated ` +
          `or corrupt`,
      );
    }
  }

  u16(offset: number): number {
    this.check(offset, 2, 'a 16-bit field');
    return this.view.getUint16(offset, true);
  }

  u32(offset: number): number {
    this.check(offset, 4, 'a 32-bit field');
    return this.view.getUint32(offset, true);
  }

  u64(offset: number, what: string): number {
    this.check(offset, 8, what);
    const high = this.view.getUint32(offset + 4, true);
    const value = high * 2 ** 32 + this.view.getUint32(offset, true);
    if (!Number.isSafeInteger(value)) {
      this.fail(`${what} ${value} is past 2^53`);
    }
    return value;
  }
}

/**
 * Lists the entries of a zip archive by name. `context` prefixes every error
 * message, such as the name of the calling function.
 */
export function readZipDirectory(
  bytes: Uint8Array,
  context: string,
): Map<string, ZipEntry> {
  const reader: ByteReader = new ByteReader(bytes, context);
  const { entryCount, directoryOffset, directorySize } = findDirectory(reader);
  const directoryEnd = directoryOffset + directorySize;
  if (directoryEnd > bytes.length) {
    reader.fail(
      `zip central directory (${directorySize} bytes at ${directoryOffset}) ` +
        `runs past the end of the ${bytes.length}-byte file; the file ` +
        `is truncated`,
    );
  }
  const entries = new Map<string, ZipEntry>();
  let offset = directoryOffset;
  for (let index = 0; index < entryCount; index++) {
    const fits = offset + CENTRAL_HEADER_BYTES <= directoryEnd;
    if (!fits || reader.u32(offset) !== CENTRAL_HEADER) {
      reader.fail(
        `zip central directory entry ${index} at byte ${offset} is invalid`,
      );
    }
    const entry = readCentralEntry(reader, offset);
    if (entries.has(entry.name)) {
      reader.fail(`zip entry '${entry.name}' appears twice`);
    }
    entries.set(entry.name, entry);
    const nameLength = reader.u16(offset + 28);
    const extraLength = reader.u16(offset + 30);
    const commentLength = reader.u16(offset + 32);
    offset += CENTRAL_HEADER_BYTES + nameLength + extraLength + commentLength;
  }
  return entries;
}

/**
 * Returns an entry's uncompressed bytes: a view into `bytes` for stored
 * entries, a new array for deflated ones. With `verifyChecksum`, a CRC-32
 * mismatch raises CheckpointError.
 */
export function readZipEntry(
  bytes: Uint8Array,
  entry: ZipEntry,
  context: string,
  verifyChecksum = true,
): Uint8Array {
  // The annotation lets TypeScript see that reader.fail() never returns.
  const subject = `zip entry '${entry.name}' `;
  const reader: ByteReader = new ByteReader(bytes, context, subject);
  if ((entry.flags & 1) !== 0) reader.fail('is encrypted');
  const local = entry.localHeaderOffset;
  reader.check(local, LOCAL_HEADER_BYTES, 'the local header');
  if (reader.u32(local) !== LOCAL_HEADER) {
    reader.fail(`has no local header at byte ${local}`);
  }
  const nameLength = reader.u16(local + 26);
  const extraLength = reader.u16(local + 28);
  const start = local + LOCAL_HEADER_BYTES + nameLength + extraLength;
  reader.check(start, entry.compressedSize, 'the data');
  const stored = bytes.subarray(start, start + entry.compressedSize);

  let data: Uint8Array;
  if (entry.method === 0) {
    if (entry.size !== entry.compressedSize) {
      reader.fail(
        `is stored but lists ${entry.compressedSize} stored and ` +
          `${entry.size} uncompressed bytes`,
      );
    }
    data = stored;
  } else if (entry.method === 8) {
    data = inflateEntry(reader, stored, entry.size);
  } else {
    reader.fail(
      `uses compression method ${entry.method}; only stored (0) and ` +
        `deflate (8) are supported`,
    );
  }
  if (verifyChecksum && crc32(data) !== entry.crc32) {
    reader.fail('fails its CRC-32 check; the file is corrupt');
  }
  return data;
}

function inflateEntry(
  reader: ByteReader,
  stored: Uint8Array,
  size: number,
): Uint8Array {
  if (size > stored.length * MAX_DEFLATE_RATIO + 64 || size >= 2 ** 32) {
    reader.fail(
      `lists ${size} uncompressed bytes, impossible for ` +
        `${stored.length} deflated bytes`,
    );
  }
  // One spare byte shows when the stream contains more than the declared
  // size, because fflate silently stops at the end of a given output buffer.
  const out = new Uint8Array(size + 1);
  const data = inflateOrFail(reader, stored, out);
  if (data.length !== size) {
    const atLeast = data.length === out.length ? 'more than ' : '';
    reader.fail(`inflates to ${atLeast}${data.length} bytes but lists ${size}`);
  }
  return data;
}

function inflateOrFail(
  reader: ByteReader,
  stored: Uint8Array,
  out: Uint8Array,
): Uint8Array {
  try {
    return inflateSync(stored, { out });
  } catch (error) {
    return reader.fail(`has invalid deflate data: ${(error as Error).message}`);
  }
}

interface DirectoryLocation {
  entryCount: number;
  directoryOffset: number;
  directorySize: number;
}

function findDirectory(reader: ByteReader): DirectoryLocation {
  const end = findEndOfDirectory(reader);
  if (end < 0) {
    reader.fail(
      'zip end of central directory record not found; the file is ' +
        'truncated or corrupt',
    );
  }
  const diskNumber = reader.u16(end + 4);
  const directoryDisk = reader.u16(end + 6);
  let location: DirectoryLocation = {
    entryCount: reader.u16(end + 10),
    directorySize: reader.u32(end + 12),
    directoryOffset: reader.u32(end + 16),
  };
  const locator = end - 20;
  if (locator >= 0 && reader.u32(locator) === ZIP64_LOCATOR) {
    const recordOffset = reader.u64(locator + 8, 'zip64 record offset');
    location = readZip64End(reader, recordOffset);
  } else if (diskNumber !== 0 || directoryDisk !== 0) {
    reader.fail('multi-disk zip archives are not supported');
  }
  return location;
}

// Scans backwards for the end record, whose comment must reach exactly to the
// end of the file, so a signature inside a comment is not taken for it.
function findEndOfDirectory(reader: ByteReader): number {
  const length = reader.bytes.length;
  const lowest = Math.max(
    0,
    length - END_OF_DIRECTORY_BYTES - MAX_COMMENT_BYTES,
  );
  for (let at = length - END_OF_DIRECTORY_BYTES; at >= lowest; at--) {
    if (reader.u32(at) !== END_OF_DIRECTORY) continue;
    const commentLength = reader.u16(at + 20);
    if (at + END_OF_DIRECTORY_BYTES + commentLength === length) return at;
  }
  return -1;
}

function readZip64End(reader: ByteReader, offset: number): DirectoryLocation {
  const what = 'the zip64 end of central directory record';
  reader.check(offset, ZIP64_END_OF_DIRECTORY_BYTES, what);
  if (reader.u32(offset) !== ZIP64_END_OF_DIRECTORY) {
    reader.fail(`${what} is not at byte ${offset}`);
  }
  if (reader.u32(offset + 16) !== 0 || reader.u32(offset + 20) !== 0) {
    reader.fail('multi-disk zip archives are not supported');
  }
  return {
    entryCount: reader.u64(offset + 32, 'zip64 entry count'),
    directorySize: reader.u64(offset + 40, 'zip64 directory size'),
    directoryOffset: reader.u64(offset + 48, 'zip64 directory offset'),
  };
}

function readCentralEntry(reader: ByteReader, offset: number): ZipEntry {
  const nameLength = reader.u16(offset + 28);
  const extraLength = reader.u16(offset + 30);
  const nameStart = offset + CENTRAL_HEADER_BYTES;
  reader.check(nameStart, nameLength + extraLength, 'a zip entry name');
  const nameBytes = reader.bytes.subarray(nameStart, nameStart + nameLength);
  let name = '';
  try {
    name = new TextDecoder('utf-8', { fatal: true }).decode(nameBytes);
  } catch {
    reader.fail(`zip entry name at byte ${offset} is not valid UTF-8`);
  }
  const entry: ZipEntry = {
    name,
    flags: reader.u16(offset + 8),
    method: reader.u16(offset + 10),
    crc32: reader.u32(offset + 16),
    compressedSize: reader.u32(offset + 20),
    size: reader.u32(offset + 24),
    localHeaderOffset: reader.u32(offset + 42),
  };
  applyZip64Extra(reader, entry, nameStart + nameLength, extraLength);
  return entry;
}

// Fields stored as 0xffffffff in the central header are in the zip64 extra
// field instead, in the order size, compressed size, local header offset.
function applyZip64Extra(
  reader: ByteReader,
  entry: ZipEntry,
  start: number,
  length: number,
): void {
  const fields = (
    ['size', 'compressedSize', 'localHeaderOffset'] as const
  ).filter((field) => entry[field] === 0xffffffff);
  if (fields.length === 0) return;
  const end = start + length;
  for (let at = start; at + 4 <= end; ) {
    const id = reader.u16(at);
    const size = reader.u16(at + 2);
    if (at + 4 + size > end) break;
    if (id === ZIP64_EXTRA_ID && size >= 8 * fields.length) {
      fields.forEach((field, index) => {
        const what = `zip64 ${field} of '${entry.name}'`;
        entry[field] = reader.u64(at + 4 + 8 * index, what);
      });
      return;
    }
    at += 4 + size;
  }
  reader.fail(`zip entry '${entry.name}' lacks its zip64 sizes`);
}

// Eight 256-entry tables for slicing-by-8: table k maps a byte to its CRC
// contribution k bytes further along, so the loop consumes 8 bytes a step.
// Int32Array and int32 arithmetic keep V8 on small integers; uint32 values
// past 2^31 become doubles (measured 2.7x slower on 100 MiB in Node 20).
let crcTables: Int32Array | null = null;

function makeCrcTables(): Int32Array {
  const tables = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    tables[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 8; k++) {
      const previous = tables[(k - 1) * 256 + n];
      tables[k * 256 + n] = tables[previous & 0xff] ^ (previous >>> 8);
    }
  }
  return tables;
}

/** Computes the CRC-32 that zip stores (ISO-HDLC, polynomial 0xEDB88320). */
export function crc32(data: Uint8Array): number {
  crcTables ??= makeCrcTables();
  const t = crcTables;
  let crc = -1;
  let i = 0;
  for (const end = data.length - 8; i <= end; i += 8) {
    const word =
      data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
    const low = crc ^ word;
    crc =
      t[1792 + (low & 0xff)] ^
      t[1536 + ((low >>> 8) & 0xff)] ^
      t[1280 + ((low >>> 16) & 0xff)] ^
      t[1024 + (low >>> 24)] ^
      t[768 + data[i + 4]] ^
      t[512 + data[i + 5]] ^
      t[256 + data[i + 6]] ^
      t[data[i + 7]];
  }
  for (; i < data.length; i++) crc = t[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}
