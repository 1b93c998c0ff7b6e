// Node-only atomic file writes: the bytes go to a temporary file in the
// target's directory, are flushed to disk, and the temporary file is then
// renamed over the target. A reader (or a run killed mid-write) therefore
// sees either the old file or the new one, never a part of either.

import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Plain reasons for the errors a write to a user's path commonly meets. */
const WRITE_FAILURES: Record<string, string> = {
  EEXIST: 'a part of its folder path is a file, not a folder',
  ENOTDIR: 'a part of its folder path is a file, not a folder',
  EISDIR: 'it is a folder',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'the file system is read-only',
  ENOSPC: 'the disk is full',
};

/** Returns an error naming `path` (not the temporary file) and the reason. */
function writeFailure(path: string, error: unknown): Error {
  const code = (error as NodeJS.ErrnoException).code;
  const reason = (code && WRITE_FAILURES[code]) || (error as Error).message;
  const detail = `${reason}${code ? ` (${code})` : ''}`;
  const failure = new Error(`cannot write ${path}: ${detail}`, { cause: error });
  // `reason` is read by writeFailureReason, for callers that name the path themselves.
  return Object.assign(failure, { code, reason: detail });
}

/**
 * Returns the cause of a writeFileAtomic failure without the path, for a
 * caller whose own message names the path; other errors as text.
 */
export function writeFailureReason(error: unknown): string {
  return (error as { reason?: string }).reason ?? String(error);
}

/**
 * Writes `bytes` (or UTF-8 text) to `path` atomically, creating the parent
 * directory when it is missing. On failure it throws an error that names
 * `path`, the reason and the system error code, and leaves no temporary
 * file behind.
 */
export async function writeFileAtomic(
  path: string,
  bytes: Uint8Array | string,
): Promise<void> {
  const directory = dirname(path);
  try {
    await mkdir(directory, { recursive: true });
  } catch (error) {
    throw writeFailure(path, error);
  }
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
    throw writeFailure(path, error);
  }
}

/**
 * Returns why `path` cannot be written by writeFileAtomic, or null when
 * the checks before writing find no reason: the path is not a folder, the
 * nearest existing folder above it is a folder, and that folder is
 * writable. A command can then reject a bad output path before its work,
 * not after the first of several outputs is written.
 */
export async function unwritableReason(path: string): Promise<string | null> {
  const target = await stat(path).catch(() => null);
  if (target?.isDirectory()) return WRITE_FAILURES.EISDIR;
  let directory = dirname(path);
  for (;;) {
    const found = await stat(directory).catch((error: NodeJS.ErrnoException) => error);
    if (!(found instanceof Error)) {
      if (!found.isDirectory()) return `${WRITE_FAILURES.ENOTDIR} (${directory})`;
      break;
    }
    // ENOTDIR: a file lies higher up, which the walk reaches next.
    if (found.code !== 'ENOENT' && found.code !== 'ENOTDIR') return found.message;
    const parent = dirname(directory);
    if (parent === directory) break;
    directory = parent;
  }
  try {
    await access(directory, constants.W_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return `${(code && WRITE_FAILURES[code]) || (error as Error).message} (${directory})`;
  }
  return null;
}
