// Runs a script's main() when the script is the process's entry point, so
// the script can also be imported (bench/workloads imports bench/train.ts)
// without running it. Exits 0 when main resolves, and 1 with the error's
// stack when it rejects.

import { pathToFileURL } from 'node:url';

/** Runs `main` if `moduleUrl` (the caller's import.meta.url) is the entry point. */
export function runMain(moduleUrl: string, main: () => Promise<void>): void {
  const entry = process.argv[1];
  if (entry === undefined || moduleUrl !== pathToFileURL(entry).href) return;
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err instanceof Error ? err.stack : err);
      process.exit(1);
    },
  );
}
