// Bounded gzip decompression on fflate's streaming inflater, so that a
// damaged or hostile stream can neither allocate more than the caller allows
// nor pass off a cut-short stream as complete.

import { Gunzip } from 'fflate';

/** Returns true when the bytes start with the gzip magic number 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

export interface InflateResult {
  /** Decompressed bytes, at most `limit` plus one input chunk's output. */
  data: Uint8Array;
  /** True when all input was consumed without reaching the limit. */
  consumedAll: boolean;
  /** fflate's message when it rejected the stream ("invalid distance"). */
  failure?: string;
  /**
   * True when the stream was consumed, is a single gzip member and its
   * trailer (CRC-32 and length of the output) matches the output.
   */
  verified: boolean;
  /** True when a consumed single-member stream failed the trailer check. */
  trailerMismatch: boolean;
}

// Input is pushed in chunks this large. Deflate expands at most 1032:1, so
// one push adds at most about 16 MiB beyond the limit.
const INPUT_CHUNK = 16 * 1024;

/**
 * Decompresses a gzip stream until `limit` output bytes exist or the input
 * ends. Errors from fflate are returned in `failure` rather than thrown, so
 * the caller can say how much of the stream was readable.
 *
 * NOTE: fflate's streaming inflater (0.8) neither reports a stream cut
 * short nor checks the CRC-32, so this function checks the trailer itself.
 * It skips the check for multi-member streams and for streams read only up
 * to the limit.
 */
export function inflateGzip(bytes: Uint8Array, limit: number): InflateResult {
  const chunks: Uint8Array[] = [];
  let total = 0;
  let members = 1;
  const inflater = new Gunzip((chunk) => {
    chunks.push(chunk);
    total += chunk.length;
  });
  inflater.onmember = () => {
    members += 1;
  };

  let offset = 0;
  let failure: string | undefined;
  try {
    while (offset < bytes.length && total < limit) {
      const end = Math.min(offset + INPUT_CHUNK, bytes.length);
      inflater.push(bytes.subarray(offset, end), end === bytes.length);
      offset = end;
    }
  } catch (error) {
    failure = error instanceof Error ? error.message : String(error);
  }

  const data = concatenate(chunks, total);
  const consumedAll = failure === undefined && offset === bytes.length;
  const checkable = consumedAll && members === 1;
  const trailerOk = checkable && trailerMatches(bytes, data);
  return {
    data,
    consumedAll,
    failure,
    verified: trailerOk,
    trailerMismatch: checkable && !trailerOk,
  };
}

function concatenate(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

// The gzip trailer (RFC 1952) is the CRC-32 of the output and its length
// modulo 2^32, both little-endian, in the member's last 8 bytes.
function trailerMatches(bytes: Uint8Array, output: Uint8Array): boolean {
  if (bytes.length < 18) return false;
  const start = bytes.byteOffset + bytes.length - 8;
  const trailer = new DataView(bytes.buffer, start, 8);
  const storedCrc = trailer.getUint32(0, true);
  const storedLength = trailer.getUint32(4, true);
  return (
    storedLength === output.length % 2 ** 32 && storedCrc === crc32(output)
  );
}

let crcTable: Uint32Array | undefined;

function makeCrcTable(): Uint32Array {
  // Reflected CRC-32 with polynomial 0xEDB88320, as gzip uses.
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let bit = 0; bit < 8; bit++) {
      c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    }
    table[n] = c >>> 0;
  }
  return table;
}

/** Returns the CRC-32 (gzip, zip, PNG) of the bytes. */
export function crc32(bytes: Uint8Array): number {
  crcTable ??= makeCrcTable();
  const table = crcTable;
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) {
    crc = table[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}
