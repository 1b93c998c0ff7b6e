// Getting bytes into and out of the page: dropped files and folders,
// zip archives of a model folder, fetches from the server, and downloads.

import { unzipSync, zipSync } from 'fflate';
import { PageError } from './messages.js';

/** A file's name (without folders) and contents. */
export interface NamedBytes {
  name: string;
  bytes: Uint8Array;
}

/** Reads a File into memory. */
export async function fileBytes(file: File): Promise<NamedBytes> {
  return { name: file.name, bytes: new Uint8Array(await file.arrayBuffer()) };
}

function baseName(path: string): string {
  return path.split('/').pop() ?? path;
}

// readEntries() returns a folder's entries in batches, so it is called
// until it returns none.
async function readDirectory(entry: FileSystemDirectoryEntry): Promise<File[]> {
  const reader = entry.createReader();
  const files: File[] = [];
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((done, fail) =>
      reader.readEntries(done, fail),
    );
    if (batch.length === 0) return files;
    for (const child of batch) {
      if (!child.isFile) continue;
      files.push(await entryFile(child as FileSystemFileEntry));
    }
  }
}

function entryFile(entry: FileSystemFileEntry): Promise<File> {
  return new Promise((done, fail) => entry.file(done, fail));
}

/**
 * Lists the files of a drop: the dropped files, and the files at the top
 * level of each dropped folder (a model folder has no subfolders).
 */
export async function droppedFiles(transfer: DataTransfer): Promise<File[]> {
  const entries = [...transfer.items]
    .filter((item) => item.kind === 'file')
    .map((item) => item.webkitGetAsEntry?.() ?? null);
  if (entries.length === 0 || entries.some((entry) => entry === null)) {
    return [...transfer.files];
  }
  const files: File[] = [];
  for (const entry of entries as FileSystemEntry[]) {
    if (entry.isDirectory) {
      files.push(...(await readDirectory(entry as FileSystemDirectoryEntry)));
    } else {
      files.push(await entryFile(entry as FileSystemFileEntry));
    }
  }
  return files;
}

/** Returns true when the bytes start with a zip archive's signature. */
function isZip(bytes: Uint8Array): boolean {
  return [0x50, 0x4b, 0x03, 0x04].every((value, i) => bytes[i] === value);
}

/**
 * Collects model-folder files by name from a list that may contain a zip
 * archive of the folder (its entries are taken by base name).
 */
export function collectModelFiles(
  files: NamedBytes[],
): Map<string, Uint8Array> {
  const collected = new Map<string, Uint8Array>();
  for (const file of files) {
    if (!isZip(file.bytes)) {
      collected.set(baseName(file.name), file.bytes);
      continue;
    }
    let entries: Record<string, Uint8Array>;
    try {
      entries = unzipSync(file.bytes);
    } catch (error) {
      throw new PageError(
        'model-invalid',
        `${file.name}: not a readable zip archive`,
        `${(error as Error).message}. Drop the model folder's files, or a ` +
          'zip made by this page.',
      );
    }
    for (const [path, bytes] of Object.entries(entries)) {
      if (!path.endsWith('/')) collected.set(baseName(path), bytes);
    }
  }
  return collected;
}

/** Fetches `url` as bytes, or returns null on HTTP 404. */
export async function fetchBytes(url: string): Promise<Uint8Array | null> {
  const response = await fetch(url, { cache: 'no-store' });
  if (response.status === 404) return null;
  if (!response.ok) {
    throw new Error(
      `GET ${url} failed: HTTP ${response.status} ${response.statusText}`,
    );
  }
  return new Uint8Array(await response.arrayBuffer());
}

/** Fetches `url` as bytes; throws naming the URL when it is missing. */
export async function fetchRequired(url: string): Promise<Uint8Array> {
  const bytes = await fetchBytes(url);
  if (!bytes) throw new Error(`GET ${url} failed: HTTP 404 (not found)`);
  return bytes;
}

/** Starts a download of `bytes` as a file named `name`. */
export function downloadBytes(name: string, bytes: Uint8Array): void {
  const blob = new Blob([bytes as Uint8Array<ArrayBuffer>], {
    type: 'application/octet-stream',
  });
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  // The browser may read the object URL after click() returns, so it is
  // revoked a minute later rather than at once.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** Packs files into a zip archive, stored under `folder/`. */
export function zipFiles(
  folder: string,
  files: Map<string, Uint8Array>,
): Uint8Array {
  const entries: Record<string, Uint8Array> = {};
  for (const [name, bytes] of files) entries[`${folder}/${name}`] = bytes;
  // The .gz and .safetensors contents are already compressed or
  // incompressible floats, so level 1 saves time and loses little.
  return zipSync(entries, { level: 1 });
}
