// Benchmark runner: `npm run bench [-- --only NAME[,NAME] | --all] [--json FILE]`.
//
// Prints the adapter, measures its ceilings (peak arithmetic and streaming
// bandwidth), then times each workload of bench/workloads/index.ts and
// prints every figure also as a fraction of its ceiling. With --json, also
// writes { adapter, ceilings, results } to FILE.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
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
import { loadTfjs, TFJS_PEERS } from './peers/tfjs.js';
import { WORKLOADS } from './workloads/index.js';

// Written by `/usr/bin/python3 bench/torch_bench.py` (PyTorch on the CPU).
const TORCH_RESULTS = new URL('./results/torch-cpu.json', import.meta.url);

/** PyTorch's median milliseconds by workload name, when its file exists. */
function readTorchResults(): Map<string, number> | null {
  if (!existsSync(TORCH_RESULTS)) {
    console.log('PyTorch results: none (run /usr/bin/python3 bench/torch_bench.py to add them)');
    return null;
  }
  const report = JSON.parse(readFileSync(TORCH_RESULTS, 'utf8')) as {
    torch: string;
    threads: number;
    results: { name: string; ms: number }[];
  };
  console.log(`PyTorch results: torch ${report.torch} on ${report.threads} CPU threads`);
  return new Map(report.results.map((r) => [r.name, r.ms]));
}

/** Median milliseconds of TensorFlow.js on `workload`, or null without a peer. */
async function timeTfjs(workload: Workload): Promise<number | null> {
  const makePeer = TFJS_PEERS[workload.name];
  if (!makePeer) return null;
  const tf = await loadTfjs();
  const peer = await makePeer(tf);
  try {
    return await medianMs(`${workload.name} tfjs`, peer.run, workload, peer.beforeEach);
  } finally {
    peer.dispose();
  }
}

interface Arguments {
  json: string | null;
  only: string[] | null;
  all: boolean;
  list: boolean;
  /** Also time TensorFlow.js on the workloads it has (off with --no-peers). */
  peers: boolean;
}

const USAGE =
  'usage: npm run bench -- [--only NAME[,NAME...] | --all] [--json FILE] [--list]\n' +
  '  --only  run only these workloads (names as in --list)\n' +
  '  --all   also run the workloads left out of the default run\n' +
  '  --json  also write the results as JSON to FILE\n' +
  '  --no-peers  skip the TensorFlow.js side-by-side runs\n' +
  '  --list  print the workload names and exit';

function parseArguments(argv: readonly string[]): Arguments {
  const parsed: Arguments = { json: null, only: null, all: false, list: false, peers: true };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (flag === '--list') {
      parsed.list = true;
    } else if (flag === '--no-peers') {
      parsed.peers = false;
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
  const torch = readTorchResults();
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
    let result: WorkloadResult;
    try {
      const ms = await medianMs(workload.name, prepared.run, workload, prepared.beforeEach);
      result = resultOf(workload.name, ms, prepared, ceilings);
    } finally {
      prepared.dispose();
    }
    const peer = args.peers ? await timeTfjs(workload) : null;
    if (peer !== null) {
      result.vsTfjs = result.ms / peer;
      console.log(`  TensorFlow.js WebGPU: ${peer.toFixed(1)} ms (ours ${result.ms.toFixed(1)} ms)`);
    }
    const torchMs = torch?.get(workload.name);
    if (torchMs !== undefined) result.vsTorch = result.ms / torchMs;
    results.push(result);
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
