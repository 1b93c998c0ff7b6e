// Benchmark runner: `npm run bench [-- --only NAME[,NAME] | --all] [--json FILE]`.
//
// Prints the adapter, measures its ceilings (peak arithmetic and streaming
// bandwidth), then times each workload of bench/workloads/index.ts and
// prints every figure also as a fraction of its ceiling. With --json, also
// writes { adapter, ceilings, results } to FILE.

import { writeFileSync } from 'node:fs';
import { ready } from '../src/index.js';
import { measureCeilings } from './ceilings.js';
import {
  formatTable,
  medianMs,
  percent,
  resultOf,
  type Workload,
  type WorkloadResult,
} from './harness.js';
import { WORKLOADS } from './workloads/index.js';

interface Arguments {
  json: string | null;
  only: string[] | null;
  all: boolean;
  list: boolean;
}

const USAGE =
  'usage: npm run bench -- [--only NAME[,NAME...] | --all] [--json FILE] [--list]\n' +
  '  --only  run only these workloads (names as in --list)\n' +
  '  --all   also run the workloads left out of the default run\n' +
  '  --json  also write the results as JSON to FILE\n' +
  '  --list  print the workload names and exit';

function parseArguments(argv: readonly string[]): Arguments {
  const parsed: Arguments = { json: null, only: null, all: false, list: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (flag === '--list') {
      parsed.list = true;
    } else if (flag === '--all') {
      parsed.all = true;
    } else if (flag === '--json' || flag === '--only') {
      if (value === undefined || value.startsWith('--')) {
        throw new Error(`bench: ${flag} needs a value\n${USAGE}`);
      }
      if (flag === '--json') parsed.json = value;
      else parsed.only = value.split(',').filter((name) => name.length > 0);
      i++;
    } else if (flag === '--help' || flag === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else {
      throw new Error(`bench: unknown argument "${flag}"\n${USAGE}`);
    }
  }
  return parsed;
}

function selectWorkloads(only: string[] | null, all: boolean): Workload[] {
  if (only === null) return WORKLOADS.filter((w) => all || w.defaultRun !== false);
  const known = WORKLOADS.map((w) => w.name);
  const missing = only.filter((name) => !known.includes(name));
  if (missing.length > 0) {
    throw new Error(
      `bench: unknown workload ${missing.join(', ')}; known: ${known.join(', ')}`,
    );
  }
  return WORKLOADS.filter((w) => only.includes(w.name));
}

async function main(): Promise<void> {
  const args = parseArguments(process.argv.slice(2));
  if (args.list) {
    for (const w of WORKLOADS) {
      const note = w.defaultRun === false ? ' (only with --only or --all)' : '';
      console.log(`${w.name.padEnd(10)} ${w.summary}${note}`);
    }
    return;
  }
  const workloads = selectWorkloads(args.only, args.all);
  const info = await ready();
  console.log(`adapter: ${info.adapter}`);

  const started = performance.now();
  const ceilings = await measureCeilings();
  console.log(
    `ceilings: ${ceilings.gflops.toFixed(2)} GFLOP/s peak arithmetic (peak-fma ` +
      `kernel), ${ceilings.gbps.toFixed(2)} GB/s streaming (copy kernel); ` +
      `copyBufferToBuffer ${ceilings.copyBufferToBufferGbps.toFixed(2)} GB/s ` +
      `(${percent(ceilings.copyBufferToBufferGbps / ceilings.gbps)} of the copy kernel)`,
  );

  const results: WorkloadResult[] = [];
  for (const workload of workloads) {
    console.log(`${workload.name}: ${workload.summary}`);
    const prepared = await workload.prepare();
    try {
      const ms = await medianMs(workload.name, prepared.run, workload);
      results.push(resultOf(workload.name, ms, prepared, ceilings));
    } finally {
      prepared.dispose();
    }
  }

  console.log('');
  console.log(formatTable(results, ceilings));
  console.log(`\nmedian of timed runs; total ${((performance.now() - started) / 1000).toFixed(1)} s`);
  if (args.json) {
    const report = {
      adapter: info.adapter,
      ceilings: {
        gflops: ceilings.gflops,
        gbps: ceilings.gbps,
        copyBufferToBufferGbps: ceilings.copyBufferToBufferGbps,
      },
      results,
    };
    writeFileSync(args.json, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`wrote ${args.json}`);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
