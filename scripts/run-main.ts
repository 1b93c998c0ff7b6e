// Runs a script's main() when the script is the process's entry point, so
// the script can also be imported (bench/workloads imports bench/train.ts)
// without running it. Exits 0 when main resolves. A UsageError (a bad
// command line) prints its message alone and exits 2, and any other error
// prints its stack and exits 1. `--help` or `-h` prints the usage.

import { pathToFileURL } from 'node:url';

/** An invalid command line: runMain prints its message without a stack. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * Runs `main` if `moduleUrl` (the caller's import.meta.url) is the entry
 * point. `usage` is printed for `--help` or `-h` instead of running main.
 */
export function runMain(moduleUrl: string, main: () => Promise<void>, usage?: string): void {
  const entry = process.argv[1];
  if (entry === undefined || moduleUrl !== pathToFileURL(entry).href) return;
  const args = process.argv.slice(2);
  if (usage !== undefined && (args.includes('--help') || args.includes('-h'))) {
    console.log(usage);
    process.exit(0);
  }
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      if (err instanceof UsageError) {
        console.error(err.message);
        process.exit(2);
      }
      console.error(err instanceof Error ? err.stack : err);
      process.exit(1);
    },
  );
}
