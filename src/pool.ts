// Size-bucketed pool of GPU buffers.
//
// A released buffer returns to the free list only after every recorded
// command that may use it has been submitted. queue.writeBuffer runs at
// once on the queue, ahead of commands still sitting in the unsubmitted
// encoder, so handing a buffer out earlier could let an upload overwrite
// data that a recorded dispatch has yet to read.

import {
  afterNextSubmit,
  deviceInfo,
  gpuDevice,
  hasPendingCommands,
} from './device.js';
import { BUFFER_USAGE } from './gpu-constants.js';

const STORAGE_USAGE = BUFFER_USAGE.STORAGE | BUFFER_USAGE.COPY_SRC | BUFFER_USAGE.COPY_DST;
const UNIFORM_USAGE = BUFFER_USAGE.UNIFORM | BUFFER_USAGE.COPY_DST;

/**
 * Rounds a byte size up to its bucket: multiples of 256 bytes up to 64 KiB,
 * then four buckets per power of two (at most 25% slack).
 */
export function bucketSize(bytes: number): number {
  const size = Math.max(bytes, 16);
  if (size <= 65536) return Math.ceil(size / 256) * 256;
  const power = 2 ** Math.floor(Math.log2(size));
  const step = power / 4;
  return Math.ceil(size / step) * step;
}

interface PoolStats {
  /** Bytes of buffers handed out and not yet released. */
  liveBytes: number;
  /** Bytes of buffers waiting in the free lists. */
  freeBytes: number;
  /** Buffers handed out and not yet released. */
  liveBuffers: number;
}

class BufferPool {
  private free = new Map<number, GPUBuffer[]>();
  private stats: PoolStats = { liveBytes: 0, freeBytes: 0, liveBuffers: 0 };

  constructor(
    private readonly usage: number,
    private readonly label: string,
  ) {}

  acquire(bytes: number): GPUBuffer {
    const size = bucketSize(bytes);
    const limit = deviceInfo().limits.maxBufferSize;
    if (size > limit) {
      throw new RangeError(
        `${this.label}: a buffer of ${bytes} bytes exceeds the device's ` +
          `maxBufferSize of ${limit} bytes. Use a smaller volume or batch.`,
      );
    }
    const list = this.free.get(size);
    let buffer = list?.pop();
    if (buffer) {
      this.stats.freeBytes -= size;
    } else {
      buffer = gpuDevice().createBuffer({
        size,
        usage: this.usage,
        label: this.label,
      });
    }
    this.stats.liveBytes += size;
    this.stats.liveBuffers += 1;
    return buffer;
  }

  release(buffer: GPUBuffer): void {
    const size = buffer.size;
    this.stats.liveBytes -= size;
    this.stats.liveBuffers -= 1;
    const putBack = () => {
      let list = this.free.get(size);
      if (!list) {
        list = [];
        this.free.set(size, list);
      }
      list.push(buffer);
      this.stats.freeBytes += size;
    };
    if (hasPendingCommands()) afterNextSubmit(putBack);
    else putBack();
  }

  /** Destroys every free buffer (live ones stay). */
  trim(): void {
    for (const list of this.free.values()) {
      for (const buffer of list) buffer.destroy();
    }
    this.free.clear();
    this.stats.freeBytes = 0;
  }

  snapshot(): PoolStats {
    return { ...this.stats };
  }
}

let storagePool: BufferPool | null = null;
let uniformPool: BufferPool | null = null;

function pools(): { storage: BufferPool; uniform: BufferPool } {
  storagePool ??= new BufferPool(STORAGE_USAGE, 'tensor storage');
  uniformPool ??= new BufferPool(UNIFORM_USAGE, 'kernel uniforms');
  return { storage: storagePool, uniform: uniformPool };
}

export function acquireStorage(bytes: number): GPUBuffer {
  return pools().storage.acquire(bytes);
}

export function releaseStorage(buffer: GPUBuffer): void {
  pools().storage.release(buffer);
}

export function acquireUniform(bytes: number): GPUBuffer {
  return pools().uniform.acquire(bytes);
}

export function releaseUniform(buffer: GPUBuffer): void {
  pools().uniform.release(buffer);
}

/** Device memory held by the pools, live and free, in bytes and buffers. */
export function memoryStats(): {
  storage: PoolStats;
  uniform: PoolStats;
  totalBytes: number;
} {
  const { storage, uniform } = pools();
  const s = storage.snapshot();
  const u = uniform.snapshot();
  return {
    storage: s,
    uniform: u,
    totalBytes: s.liveBytes + s.freeBytes + u.liveBytes + u.freeBytes,
  };
}

/** Frees the pools' idle buffers, for example between training runs. */
export function trimPools(): void {
  const { storage, uniform } = pools();
  storage.trim();
  uniform.trim();
}
