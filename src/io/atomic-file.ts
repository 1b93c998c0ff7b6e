// Node-only atomic file writes: the bytes go to a temporary file in the
// target's directory, are flushed to disk, and the temporary file is then
// renamed over the target. A reader (or a run killed mid-write) therefore
// sees either the old file or the new one, never a part of either.

import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Writes `bytes` (or UTF-8 text) to `path` atomically, creating the parent
 * directory when it is missing. Throws the underlying error on failure and
 * leaves no temporary file behind.
 */
export async function writeFileAtomic(
  path: string,
  bytes: Uint8Array | string,
): Promise<void> {
  const directory = dirname(path);
  await mkdir(directory, { recursive: true });
  const suffix = randomBytes(6).toString('hex');
  const temporary = join(directory, `.${basename(path)}.${suffix}.tmp`);
  try {
    const handle = await open(temporary, 'wx');
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
}
