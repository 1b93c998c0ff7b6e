// Node-only disk cache of teacher features: one safetensors file per cache
// key, <directory>/<key>.safetensors, with the features as the tensor
// "features" and the metadata as JSON in the "meta" metadata entry.
// Browsers can implement TeacherFeatureCache on IndexedDB instead.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic-file.js';
import { CheckpointError } from '../io/checkpoint-error.js';
import {
  readSafetensorsWithMetadata,
  writeSafetensors,
} from '../io/safetensors.js';
import { log } from '../log.js';
import type {
  CachedTeacherFeatures,
  TeacherFeatureCache,
  TeacherFeatureMeta,
} from './teacher.js';

const KEY_PATTERN = /^[0-9a-f]{16,128}$/;

function checkKey(key: string): void {
  if (!KEY_PATTERN.test(key)) {
    throw new RangeError(
      `DiskFeatureCache: key "${key}" is invalid; expected 16 to 128 ` +
        'lowercase hex digits',
    );
  }
}

/**
 * Teacher features on disk under `directory`, which is created on the
 * first write. Writes go to a temporary file that is renamed into place,
 * so a reader never sees a partial entry. An entry that cannot be parsed
 * is reported with a warning and treated as missing, so it is recomputed.
 */
export class DiskFeatureCache implements TeacherFeatureCache {
  /** Entries read and written since construction. */
  readonly counts = { hits: 0, misses: 0, writes: 0 };

  constructor(readonly directory: string) {}

  /** Returns the path of the entry of `key`. */
  pathOf(key: string): string {
    checkKey(key);
    return join(this.directory, `${key}.safetensors`);
  }

  async read(key: string): Promise<CachedTeacherFeatures | null> {
    const path = this.pathOf(key);
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(path));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      this.counts.misses += 1;
      return null;
    }
    try {
      const entry = parseEntry(bytes);
      this.counts.hits += 1;
      return entry;
    } catch (error) {
      if (!(error instanceof CheckpointError || error instanceof SyntaxError)) {
        throw error;
      }
      log.warn(
        `teacher cache: ignoring unreadable entry ${path}: ` +
          `${(error as Error).message}`,
      );
      this.counts.misses += 1;
      return null;
    }
  }

  async write(key: string, entry: CachedTeacherFeatures): Promise<void> {
    const path = this.pathOf(key);
    const features = {
      dtype: 'float32' as const,
      shape: entry.shape,
      data: entry.data,
    };
    const bytes = writeSafetensors(new Map([['features', features]]), {
      meta: JSON.stringify(entry.meta),
    });
    await writeFileAtomic(path, bytes);
    this.counts.writes += 1;
  }
}

function parseEntry(bytes: Uint8Array): CachedTeacherFeatures {
  const { tensors, metadata } = readSafetensorsWithMetadata(bytes);
  const features = tensors.get('features');
  if (!features || features.dtype !== 'float32' || !metadata?.meta) {
    throw new CheckpointError(
      'entry lacks a float32 "features" tensor or its "meta" metadata',
    );
  }
  const meta = JSON.parse(metadata.meta) as TeacherFeatureMeta;
  return { data: features.data as Float32Array, shape: features.shape, meta };
}
