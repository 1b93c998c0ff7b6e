// Node-only manifest helpers: read a manifest file, check that its files
// exist, and validate them with volumes read from disk. Browsers call
// parseManifest and validateManifest with their own loader instead.

import { readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import {
  ManifestError,
  manifestFiles,
  parseManifest,
  type DatasetManifest,
  type ManifestReport,
  type ValidateOptions,
  type VolumeLoader,
} from './manifest.js';
import { validateManifest } from './manifest-validate.js';
import { readNiftiFile } from './nifti-file.js';
import { loadStructureTable, type StructureTable } from './structures.js';

/** A manifest read from disk, with its paths resolved and its report. */
export interface LoadedManifest {
  /** Absolute path of the manifest file. */
  path: string;
  manifest: DatasetManifest;
  /** Structure table named by the manifest, when it names one. */
  structures?: StructureTable;
  /** Validation report; absent when loaded with `validate: false`. */
  report?: ManifestReport;
  /** Resolves a manifest path against the manifest's directory. */
  resolve(path: string): string;
}

export interface LoadManifestOptions
  extends Omit<ValidateOptions, 'structures'> {
  /**
   * Read and check every volume (default true). When false, only the
   * files' existence and the structure table are checked.
   */
  validate?: boolean;
}

/** Returns a loader that reads manifest paths relative to `directory`. */
export function fileLoader(directory: string): VolumeLoader {
  return (path) => readNiftiFile(resolve(directory, path));
}

/**
 * Reads and parses a manifest file, checks that every file it names
 * exists (one error lists all missing paths), loads its structure table
 * and, unless `validate` is false, validates every volume.
 */
export async function loadManifest(
  path: string,
  options: LoadManifestOptions = {},
): Promise<LoadedManifest> {
  const manifestPath = resolve(path);
  const directory = dirname(manifestPath);
  let text: string;
  try {
    text = await readFile(manifestPath, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT' ? 'file not found' : `read failed: ${String(error)}`;
    throw new ManifestError(manifestPath, [reason]);
  }
  const manifest = parseManifest(text, manifestPath);
  await checkFilesExist(manifest, directory, manifestPath);

  const loaded: LoadedManifest = {
    path: manifestPath,
    manifest,
    resolve: (relative) => resolve(directory, relative),
  };
  if (manifest.structures) {
    const tablePath = resolve(directory, manifest.structures);
    try {
      loaded.structures = loadStructureTable(await readFile(tablePath, 'utf8'));
    } catch (error) {
      throw new ManifestError(manifestPath, [
        `structures (${tablePath}): ${(error as Error).message}`,
      ]);
    }
  }
  if (options.validate ?? true) {
    try {
      loaded.report = await validateManifest(manifest, fileLoader(directory), {
        ...options,
        structures: loaded.structures,
      });
    } catch (error) {
      // Name the manifest file rather than the validating function.
      if (error instanceof ManifestError) throw new ManifestError(manifestPath, error.problems);
      throw error;
    }
  }
  return loaded;
}

async function checkFilesExist(
  manifest: DatasetManifest,
  directory: string,
  source: string,
): Promise<void> {
  const problems: string[] = [];
  for (const file of manifestFiles(manifest)) {
    const absolute = resolve(directory, file.path);
    try {
      const info = await stat(absolute);
      if (!info.isFile()) {
        problems.push(`${file.field}: ${absolute} is not a regular file`);
      }
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      problems.push(
        code === 'ENOENT'
          ? `${file.field}: file not found: ${absolute}`
          : `${file.field}: cannot access ${absolute}: ${String(error)}`,
      );
    }
  }
  if (problems.length > 0) throw new ManifestError(source, problems);
}
