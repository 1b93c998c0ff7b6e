// The command line and the model folder: flag parsing and help, the
// folder's encoding and its config checks, and the verbs run as a user
// runs them (a child process per command) on two embedded IXI scans:
// train, kill and resume to bitwise the same weights, segment onto the
// input's own grid, and evaluate into report.json.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError, parseFlags, verbHelp, type VerbSpec } from '../src/cli/args.js';
import { checkDistinctOutputs } from '../src/cli/infer.js';
import { CheckpointError } from '../src/io/checkpoint-error.js';
import { RrlMedSam } from '../src/nn/rrl/model.js';
import { copyInto } from '../src/nn/copy.js';
import { tensor } from '../src/tensor.js';
import {
  ConfigMismatchError,
  MODEL_FORMAT,
  configMismatches,
  decodeDescriptor,
  decodeWeights,
  encodeWeights,
} from '../src/pipeline/model-folder.js';
import { readNiftiFile, writeNiftiFile } from '../src/pipeline/nifti-file.js';
import { decodeModelFolder, readNifti, ready, segmentScan } from '../src/index.js';
import { device } from './helpers.js';

const SPEC: VerbSpec = {
  name: 'train',
  summary: 'train',
  description: 'Trains.',
  flags: {
    out: { kind: 'string', value: 'DIR', help: 'model folder', required: true },
    steps: { kind: 'integer', value: 'N', help: 'iterations per stage', min: 0, default: 300 },
    stage: { kind: 'string', help: 'stages', choices: ['1', '2', 'both'], default: 'both' },
    resume: { kind: 'boolean', help: 'continue' },
  },
  examples: ['rrl-medsam train --out runs/a'],
};

describe('flags', () => {
  it('parses values, defaults and booleans', () => {
    expect(parseFlags(SPEC, ['--out', 'a', '--steps=12', '--resume'])).toEqual({
      out: 'a',
      steps: 12,
      stage: 'both',
      resume: true,
    });
    expect(parseFlags(SPEC, ['--out=b', '--no-resume']).resume).toBe(false);
  });

  it('takes the last value of a repeated flag, with a note', () => {
    const notes: string[] = [];
    const parsed = parseFlags(SPEC, ['--out', 'a', '--steps', '3', '--steps=4', '--resume', '--no-resume'], (line) =>
      notes.push(line),
    );
    expect(parsed).toMatchObject({ steps: 4, resume: false });
    expect(notes).toEqual([
      'note: train: --steps is given twice ("--steps 3" and "--steps=4"); using the last',
      'note: train: --resume is given twice ("--resume" and "--no-resume"); using the last',
    ]);
  });

  it('names the flag, the value and the fix', () => {
    const message = (argv: string[]) => {
      try {
        parseFlags(SPEC, argv);
      } catch (error) {
        expect(error).toBeInstanceOf(UsageError);
        return (error as Error).message;
      }
      throw new Error('parseFlags accepted ' + argv.join(' '));
    };
    expect(message(['--out', 'a', '--step', '3'])).toBe(
      'train: unknown option --step; did you mean --steps? (see rrl-medsam train --help)',
    );
    expect(message(['--out', 'a', '--steps', '2.5'])).toBe('train: --steps must be an integer, got "2.5"');
    expect(message(['--out', 'a', '--steps', '0x9'])).toBe('train: --steps must be an integer, got "0x9"');
    expect(message(['--out', 'a', '--steps', '1e1'])).toBe('train: --steps must be an integer, got "1e1"');
    expect(message(['--out', 'a', '--steps', '9007199254740993'])).toBe(
      'train: --steps must be an integer, got "9007199254740993"',
    );
    expect(message(['--out', 'a', '--steps', '-1'])).toBe('train: --steps must be >= 0, got -1');
    expect(message(['--out', 'a', '--stage', '3'])).toBe('train: --stage must be one of 1, 2, both, got "3"');
    expect(message(['--steps', '3'])).toBe('train: --out is required (model folder)');
    expect(message(['--out'])).toBe('train: --out needs a value (DIR)');
    expect(message(['--out', 'a', 'extra'])).toContain('unexpected argument "extra"');
  });

  it('help lists every flag with its default', () => {
    const help = verbHelp(SPEC);
    expect(help.split('\n')[0]).toBe(
      'usage: rrl-medsam train --out DIR [--steps N] [--stage STRING] [--resume]',
    );
    for (const name of Object.keys(SPEC.flags)) expect(help).toContain(`--${name}`);
    expect(help).toContain('(default 300)');
    expect(help).toContain('rrl-medsam train --out runs/a');
    // Every option's text, --help's too, starts in the same column.
    const options = help.split('\n').filter((line) => line.startsWith('  --'));
    expect(options).toHaveLength(Object.keys(SPEC.flags).length + 1);
    const columns = options.map((line) => /^ {2}--\S+(?: \S+)? {2,}/.exec(line)?.[0].length);
    expect(new Set(columns).size, options.join('\n')).toBe(1);
  });
});

describe('output paths', () => {
  it('rejects outputs reached through a symbolic link', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'rrl-medsam-links-'));
    try {
      await mkdir(join(folder, 'inputs'));
      await mkdir(join(folder, 'model'));
      await writeFile(join(folder, 'inputs', 'scan.nii.gz'), 'x');
      await symlink(join(folder, 'inputs'), join(folder, 'linked-inputs'));
      await symlink(join(folder, 'model'), join(folder, 'linked-model'));
      const input = join(folder, 'linked-inputs', 'scan.nii.gz');
      expect(() =>
        checkDistinctOutputs('segment', { input }, { 'warped-labels': join(folder, 'inputs', 'scan.nii.gz') }),
      ).toThrow(`segment: --warped-labels ${join(folder, 'inputs', 'scan.nii.gz')} is the same path as --input`);
      expect(() =>
        checkDistinctOutputs('segment', { input }, { out: join(folder, 'linked-model', 'atlas-labels.nii.gz') }, join(folder, 'model')),
      ).toThrow('is inside the --model folder');
      // A new file in a new folder beside them is fine.
      expect(() => checkDistinctOutputs('segment', { input }, { out: join(folder, 'new', 'seg.nii.gz') })).not.toThrow();
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
});

describe('model folder', () => {
  beforeAll(device);

  it('weights round-trip bitwise and keep the config', async () => {
    const model = new RrlMedSam({ preset: 'tiny', numClasses: 3, seed: 5 });
    const bytes = await encodeWeights(model, 7);
    const { model: loaded, step } = decodeWeights('a.safetensors', bytes, model.config);
    expect(step).toBe(7);
    expect(loaded.config).toEqual(model.config);
    const a = model.stateDict();
    const b = loaded.stateDict();
    for (const [name, t] of a) {
      expect(Array.from(await b.get(name)!.toArray()), name).toEqual(Array.from(await t.toArray()));
    }
    [...a.values(), ...b.values()].forEach((t) => t.dispose());
    model.dispose();
    loaded.dispose();
  });

  it('refuses a checkpoint of another config, naming the keys', async () => {
    const model = new RrlMedSam({ preset: 'tiny', numClasses: 3 });
    const bytes = await encodeWeights(model, 1);
    const other = new RrlMedSam({ preset: 'tiny', numClasses: 5, encoderChannels: [2, 4, 8, 8, 8] });
    expect(configMismatches(other.config, model.config)).toEqual([
      'encoderChannels: [2,4,4,8,8] in the checkpoint, [2,4,8,8,8] expected',
      'numClasses: 3 in the checkpoint, 5 expected',
    ]);
    const decode = () => decodeWeights('m/model.safetensors', bytes, other.config);
    expect(decode).toThrow(ConfigMismatchError);
    expect(decode).toThrow(CheckpointError);
    expect(decode).toThrow(
      'm/model.safetensors: the checkpoint was written for another model config ' +
        '(encoderChannels: [2,4,4,8,8] in the checkpoint, [2,4,8,8,8] expected; ' +
        'numClasses: 3 in the checkpoint, 5 expected). Use the model folder it ' +
        'came from, or train a new model for this config.',
    );
    model.dispose();
    other.dispose();
  });

  it('refuses a model.json of another format', () => {
    const bytes = new TextEncoder().encode(JSON.stringify({ format: 'other/1' }));
    expect(() => decodeDescriptor('m/model.json', bytes)).toThrow(
      'm/model.json: format is "other/1", expected "' + MODEL_FORMAT + '"',
    );
    expect(() => decodeDescriptor('m/model.json', new TextEncoder().encode('{'))).toThrow(
      'm/model.json: not valid JSON',
    );
  });

  it('rejects a damaged model.json or model.safetensors', async () => {
    const descriptor = {
      format: MODEL_FORMAT,
      config: { numClasses: 2 },
      preprocess: { size: 32, marginMm: 4, align: 'affine' },
      labels: [{ id: 0 }, { id: 1 }],
      training: {},
    };
    const encode = (value: object) => new TextEncoder().encode(JSON.stringify(value));
    expect(() => decodeDescriptor('m/model.json', encode({ ...descriptor, config: null }))).toThrow(
      'm/model.json: missing fields config',
    );
    expect(() =>
      decodeDescriptor('m/model.json', encode({ ...descriptor, preprocess: { size: 32, marginMm: -50, align: 'bogus' } })),
    ).toThrow(
      'm/model.json: "preprocess" is invalid (marginMm -50 is not a number of at least 0; align "bogus" is not ' +
        '"affine" or "none"); the file was edited or damaged',
    );
    expect(() => decodeDescriptor('m/model.json', encode({ ...descriptor, labels: [{ id: 1 }, { id: 1 }] }))).toThrow(
      'm/model.json: label id 1 appears twice in "labels"',
    );
    const model = new RrlMedSam({ preset: 'tiny', numClasses: 3 });
    const bytes = await encodeWeights(model, 1);
    model.dispose();
    expect(() => decodeWeights('m/model.safetensors', bytes.subarray(0, bytes.length - 100))).toThrow(
      /^m\/model\.safetensors: .*; the file is damaged or not a safetensors file/,
    );
    // One flipped bit in a weight: the file still parses, the checksum fails.
    const flipped = bytes.slice();
    flipped[flipped.length - 5] ^= 0x08;
    expect(() => decodeWeights('m/model.safetensors', flipped)).toThrow(
      /^m\/model\.safetensors: the tensor data's CRC-32 is [0-9a-f]{8} but the file records [0-9a-f]{8}, so the file is damaged; copy the model folder again/,
    );
    // A NaN weight written with a matching checksum, as a diverged run would.
    const diverged = new RrlMedSam({ preset: 'tiny', numClasses: 3 });
    const bias = diverged.registrationDecoder.flow.bias!;
    const nanBias = tensor(Float32Array.from({ length: bias.size }, (_, i) => (i === 1 ? NaN : 0)), bias.shape);
    copyInto('test', bias, nanBias);
    nanBias.dispose();
    const nanBytes = await encodeWeights(diverged, 1);
    diverged.dispose();
    expect(() => decodeWeights('m/model.safetensors', nanBytes)).toThrow(
      /^m\/model\.safetensors: tensor registration_decoder\.flow\.bias has the invalid value NaN at element 1 \(a run that diverged/,
    );
  });
});

const ROOT = resolve(import.meta.dirname, '..');
const IXI = join(ROOT, 'data/ixi-brain');

/** Runs the CLI in a child process; resolves with its exit code and output. */
function cli(
  args: string[],
  onOutput?: (text: string, kill: () => void, signal: (name: NodeJS.Signals) => void) => void,
): Promise<{ code: number | null; output: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const take = (chunk: Buffer) => {
      output += chunk.toString();
      onOutput?.(output, () => child.kill('SIGKILL'), (name) => child.kill(name));
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', fail);
    child.on('close', (code) => done({ code, output }));
  });
}

/** Pearson correlation of two equally long arrays. */
function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let meanA = 0;
  let meanB = 0;
  for (let i = 0; i < a.length; i++) {
    meanA += a[i] / a.length;
    meanB += b[i] / b.length;
  }
  let product = 0;
  let varianceA = 0;
  let varianceB = 0;
  for (let i = 0; i < a.length; i++) {
    product += (a[i] - meanA) * (b[i] - meanB);
    varianceA += (a[i] - meanA) ** 2;
    varianceB += (b[i] - meanB) ** 2;
  }
  return product / Math.sqrt(varianceA * varianceB);
}

describe('command line', () => {
  let work: string;
  let manifest: string;
  // A tiny run: 32^3, tiny widths, 2 + 2 iterations, the smallest SAM
  // teacher on 32-pixel slices.
  const trainArgs = (out: string) => [
    'train',
    '--manifest', manifest,
    '--out', out,
    '--size', '32',
    '--preset', 'tiny',
    '--steps', '2',
    '--sam-config', 'tiny',
    '--teacher-size', '32',
    '--checkpoint-every', '1',
    '--log-every', '1',
    '--cache', join(work, 'cache'),
  ];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rrl-medsam-cli-'));
    manifest = join(work, 'manifest.json');
    const at = (path: string) => join(IXI, path);
    await writeFile(
      manifest,
      JSON.stringify({
        atlas: { image: at('images/IXI012-HH-1211_t1.nii.gz'), labels: at('labels/IXI012-HH-1211_labels.nii.gz') },
        train: [at('images/IXI013-HH-1212_t1.nii.gz'), at('images/IXI014-HH-1236_t1.nii.gz')],
        test: [{ image: at('images/IXI039-HH-1261_t1.nii.gz'), labels: at('labels/IXI039-HH-1261_labels.nii.gz') }],
        structures: at('structures.csv'),
      }),
    );
  });
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('prints help and rejects bad arguments with exit code 2', async () => {
    const help = await cli(['segment', '--help']);
    expect(help.code).toBe(0);
    expect(help.output).toContain('usage: rrl-medsam segment --model DIR --input FILE --out FILE');
    const bad = await cli(['train', '--manifest', manifest, '--out', join(work, 'x'), '--size', '40']);
    expect(bad.code).toBe(2);
    expect(bad.output).toContain('train: --size 40 must be a multiple of 16 from 32 to 256');
    const missing = await cli(['segment', '--model', join(work, 'none'), '--input', 'a.nii.gz', '--out', 'b.nii.gz']);
    expect(missing.code).toBe(1);
    expect(missing.output).toContain(`${join(work, 'none')}: cannot read the model folder (ENOENT)`);
  });

  it('a killed and resumed run ends with bitwise the same weights', async () => {
    const straight = join(work, 'straight');
    const first = await cli(trainArgs(straight));
    expect(first.code, first.output).toBe(0);
    expect(first.output).toContain('teacher: random init (no SAM checkpoint)');
    expect(first.output).toMatch(/train 4\/4 \| stage 2 /);

    const killed = join(work, 'killed');
    const interrupted = await cli(trainArgs(killed), (output, kill) => {
      // Killed right after the second iteration's summary line, while the
      // process writes its checkpoint or starts the third iteration.
      if (output.includes('train 2/4')) kill();
    });
    expect(interrupted.code).not.toBe(0);
    expect(existsSync(join(killed, 'model.json'))).toBe(true);
    const refused = await cli(trainArgs(killed));
    expect(refused.code).toBe(1);
    expect(refused.output).toContain('already holds a model');
    const resumed = await cli([...trainArgs(killed), '--resume']);
    expect(resumed.code, resumed.output).toBe(0);
    expect(resumed.output).toMatch(/resumed .* at iteration [12] of 4/);

    for (const name of ['model.safetensors', 'train-state.safetensors']) {
      const a = await readFile(join(straight, name));
      const b = await readFile(join(killed, name));
      expect(Buffer.compare(a, b), name).toBe(0);
    }
    const descriptor = JSON.parse(await readFile(join(killed, 'model.json'), 'utf8'));
    expect(descriptor.step).toBe(4);
    expect(existsSync(join(killed, 'loss-curve.png'))).toBe(true);

    const conflicting = await cli([...trainArgs(killed), '--resume', '--seed', '3']);
    expect(conflicting.code).toBe(1);
    expect(conflicting.output).toContain('--seed 3 (the folder has 0)');
    const window = await cli([...trainArgs(killed), '--resume', '--ncc-window', '5']);
    expect(window.code).toBe(1);
    expect(window.output).toContain('--ncc-window 5 (the folder has 9)');
  });

  it('a run stopped at step 0 starts over', async () => {
    // A folder as a run leaves it when stopped before its first iteration
    // finished: model.json at step 0 (here over later weights).
    const early = join(work, 'early');
    await cp(join(work, 'straight'), early, { recursive: true });
    const descriptorPath = join(early, 'model.json');
    const descriptor = JSON.parse(await readFile(descriptorPath, 'utf8'));
    await writeFile(descriptorPath, JSON.stringify({ ...descriptor, step: 0 }));
    const rerun = await cli(trainArgs(early));
    expect(rerun.code, rerun.output).toBe(0);
    expect(rerun.output).toContain(`note: ${early} holds a model at step 0 (no iteration finished), so training starts over there`);
    for (const name of ['model.safetensors', 'train-state.safetensors']) {
      const a = await readFile(join(work, 'straight', name));
      const b = await readFile(join(early, name));
      expect(Buffer.compare(a, b), name).toBe(0);
    }
  });

  it('Ctrl-C sent twice stops after the step', async () => {
    const stopped = join(work, 'stopped');
    let sent = false;
    const run = await cli(trainArgs(stopped), (output, _kill, signal) => {
      // `npm run` and the terminal both deliver one Ctrl-C.
      if (!sent && output.includes('train 1/4')) {
        sent = true;
        signal('SIGINT');
        signal('SIGINT');
      }
    });
    expect(run.code, run.output).toBe(130);
    expect(run.output).toContain('stopping after this step');
    const reported = /stopped at iteration (\d) of 4 on Ctrl-C/.exec(run.output);
    expect(reported, run.output).not.toBeNull();
    const descriptor = JSON.parse(await readFile(join(stopped, 'model.json'), 'utf8'));
    expect(descriptor.step).toBe(Number(reported![1]));
  });

  it('segment writes labels on the input grid and evaluate writes the report', async () => {
    const model = join(work, 'straight');
    const input = join(IXI, 'images/IXI039-HH-1261_t1.nii.gz');
    const out = join(work, 'seg.nii.gz');
    const warpedLabels = join(work, 'seg-atlas.nii.gz');
    const segmented = await cli([
      'segment', '--model', model, '--input', input, '--out', out, '--preview', join(work, 'seg.png'),
      '--warped-labels', warpedLabels,
    ]);
    expect(segmented.code, segmented.output).toBe(0);
    const scan = await readNiftiFile(input);
    const labels = await readNiftiFile(out);
    expect(labels.dims).toEqual(scan.dims);
    expect(Array.from(labels.affine)).toEqual(Array.from(scan.affine).map((v) => Math.fround(v)));
    // The input's codes (1, scanner space) and not the writer's default 2.
    expect(labels.sformCode).toBe(scan.sformCode);
    expect(labels.qformCode).toBe(scan.qformCode);
    const descriptor = JSON.parse(await readFile(join(model, 'model.json'), 'utf8'));
    const ids = new Set(descriptor.labels.map((entry: { id: number }) => entry.id));
    for (const value of new Set(labels.data)) expect(ids.has(value), `label ${value}`).toBe(true);
    expect(existsSync(join(work, 'seg.png'))).toBe(true);
    const atlasLabels = await readNiftiFile(warpedLabels);
    expect(atlasLabels.dims).toEqual(scan.dims);
    expect(Array.from(atlasLabels.affine)).toEqual(Array.from(labels.affine));
    const atlasIds = new Set(atlasLabels.data);
    for (const value of atlasIds) expect(ids.has(value), `atlas label ${value}`).toBe(true);
    // The warped atlas covers the brain with several structures.
    expect(atlasIds.size).toBeGreaterThan(3);

    const refinedLabels = join(work, 'seg-atlas-refined.nii.gz');
    const refinedRun = await cli(['segment', '--model', model, '--input', input, '--out', join(work, 'seg-2.nii.gz'), '--warped-labels', refinedLabels, '--refine', '2']);
    expect(refinedRun.code, refinedRun.output).toBe(0);
    expect(refinedRun.output).toContain('refined the registration in 2 steps');
    expect(Array.from((await readNiftiFile(join(work, 'seg-2.nii.gz'))).data)).toEqual(Array.from(labels.data));
    expect(existsSync(refinedLabels)).toBe(true);
    const pointless = await cli(['segment', '--model', model, '--input', input, '--out', join(work, 'seg-3.nii.gz'), '--refine', '2']);
    expect(pointless.code).toBe(2);
    expect(pointless.output).toContain('segment: --refine 2 changes only the warped atlas; add --warped-labels FILE or --warped FILE');

    const evaluation = join(work, 'evaluation');
    const evaluated = await cli(['evaluate', '--model', model, '--manifest', manifest, '--out', evaluation, '--panels', '1']);
    expect(evaluated.code, evaluated.output).toBe(0);
    expect(evaluated.output.split('\n').find((line) => line.startsWith('teacher'))).toContain(
      'random init (no SAM checkpoint)',
    );
    const report = JSON.parse(await readFile(join(evaluation, 'report.json'), 'utf8'));
    expect(Object.keys(report).slice(0, 5)).toEqual(['teacher', 'size', 'steps', 'dice', 'ncc']);
    expect(report.size).toBe(32);
    expect(report.steps).toEqual({ stage1: 2, stage2: 2 });
    for (const key of ['final', 'general', 'registration', 'identity']) {
      expect(Object.keys(report.dice[key].perLabel)).toHaveLength(descriptor.labels.length - 1);
      expect(report.dice[key].mean).toBeGreaterThanOrEqual(0);
    }
    expect(report.ncc.registration.mean).toBeGreaterThan(0);
    expect(existsSync(join(evaluation, 'IXI039-HH-1261_t1_panels.png'))).toBe(true);
    expect(existsSync(join(evaluation, 'IXI039-HH-1261_t1_segmentation.nii.gz'))).toBe(true);
    expect(report.refine).toBeUndefined();

    const refinedFolder = join(work, 'evaluation-refined');
    const refined = await cli(['evaluate', '--model', model, '--manifest', manifest, '--out', refinedFolder, '--panels', '0', '--refine', '3']);
    expect(refined.code, refined.output).toBe(0);
    expect(refined.output).toContain('registration refined by 3 steps');
    const refinedReport = JSON.parse(await readFile(join(refinedFolder, 'report.json'), 'utf8'));
    expect(refinedReport.refine.steps).toBe(3);
    expect(refinedReport.refine.mode).toBe('field');
    expect(refinedReport.refine.folding.count).toBe(1);
    expect(Object.keys(refinedReport.dice.refined.perLabel)).toHaveLength(descriptor.labels.length - 1);
    expect(refinedReport.ncc.refined.count).toBe(1);
    // The network's own columns are the same as without refinement.
    expect(refinedReport.dice.registration).toEqual(report.dice.registration);
    expect(refinedReport.dice.final).toEqual(report.dice.final);
    const table = await readFile(join(refinedFolder, 'report.txt'), 'utf8');
    expect(table.split('\n').find((line) => line.startsWith('Dice'))?.split(/\s{2,}/)).toEqual([
      'Dice', 'final', 'general', 'registration', 'identity', 'refined',
    ]);
  });

  it('the package root segments as the cli does', async () => {
    await ready();
    const model = join(work, 'straight');
    const files = new Map<string, Uint8Array>();
    for (const name of await readdir(model)) {
      if (name.endsWith('.json') || name.endsWith('.safetensors') || name.endsWith('.nii.gz')) {
        files.set(name, new Uint8Array(await readFile(join(model, name))));
      }
    }
    const loaded = decodeModelFolder(model, files);
    try {
      const scan = readNifti(new Uint8Array(await readFile(join(IXI, 'images/IXI039-HH-1261_t1.nii.gz'))));
      const ids = loaded.descriptor.labels.map((entry) => entry.id);
      const result = await segmentScan(loaded.model, loaded.atlas, loaded.descriptor.preprocess, scan, ids);
      const viaCli = await readNiftiFile(join(work, 'seg.nii.gz'));
      expect(result.labels.dims).toEqual(viaCli.dims);
      expect(Array.from(result.labels.data)).toEqual(Array.from(viaCli.data));
    } finally {
      loaded.model.dispose();
    }
  });

  it('register writes the moving scan and labels on the fixed grid', async () => {
    const model = join(work, 'straight');
    const fixedPath = join(IXI, 'images/IXI039-HH-1261_t1.nii.gz');
    const movingPath = join(IXI, 'images/IXI048-HH-1326_t1.nii.gz');
    const out = join(work, 'registered.nii.gz');
    const labelsOut = join(work, 'registered-labels.nii.gz');
    const registered = await cli([
      'register', '--model', model, '--moving', movingPath, '--fixed', fixedPath, '--out', out,
      '--moving-labels', join(IXI, 'labels/IXI048-HH-1326_labels.nii.gz'), '--labels-out', labelsOut,
    ]);
    expect(registered.code, registered.output).toBe(0);
    const fixed = await readNiftiFile(fixedPath);
    const moving = await readNiftiFile(movingPath);
    const moved = await readNiftiFile(out);
    expect(moved.dims).toEqual(fixed.dims);
    expect(Array.from(moved.affine)).toEqual(Array.from(fixed.affine).map((v) => Math.fround(v)));
    // The moving scan's own intensities, not the model's [0, 1] ones.
    const peak = (data: Float32Array) => data.reduce((a, b) => Math.max(a, b), 0);
    expect(peak(moved.data)).toBeGreaterThan(100);

    const refinedOut = join(work, 'registered-refined.nii.gz');
    const refined = await cli([
      'register', '--model', model, '--moving', movingPath, '--fixed', fixedPath, '--out', refinedOut, '--refine', '2',
    ]);
    expect(refined.code, refined.output).toBe(0);
    expect(refined.output).toMatch(/refined the registration in 2 steps: l1 L_smooth \+ l2 L_sim -?\d\.\d{4} -> -?\d\.\d{4}/);
    const movedRefined = await readNiftiFile(refinedOut);
    expect(movedRefined.dims).toEqual(fixed.dims);
    expect(movedRefined.data.some((value, index) => value !== moved.data[index])).toBe(true);
    expect(peak(moved.data)).toBeLessThanOrEqual(peak(moving.data));
    const movingCodes = new Set((await readNiftiFile(join(IXI, 'labels/IXI048-HH-1326_labels.nii.gz'))).data);
    for (const code of new Set((await readNiftiFile(labelsOut)).data)) expect(movingCodes.has(code), `code ${code}`).toBe(true);

    // A scan registered onto itself comes back close to itself.
    const self = join(work, 'self.nii.gz');
    const onItself = await cli(['register', '--model', model, '--moving', fixedPath, '--fixed', fixedPath, '--out', self]);
    expect(onItself.code, onItself.output).toBe(0);
    expect(correlation((await readNiftiFile(self)).data, fixed.data)).toBeGreaterThan(0.9);
  });

  it('rejects outputs that overwrite inputs', async () => {
    const input = join(work, 'scan.nii.gz');
    await cp(join(IXI, 'images/IXI039-HH-1261_t1.nii.gz'), input);
    const before = await readFile(input);
    const segmented = await cli(['segment', '--model', join(work, 'straight'), '--input', input, '--out', input]);
    expect(segmented.code).toBe(2);
    expect(segmented.output).toContain(`segment: --out ${input} is the same path as --input`);
    expect(Buffer.compare(await readFile(input), before)).toBe(0);

    const moving = join(IXI, 'images/IXI048-HH-1326_t1.nii.gz');
    const out = join(work, 'moved.nii.gz');
    const registered = await cli(['register', '--model', join(work, 'straight'), '--moving', moving, '--fixed', input, '--out', out, '--flow', out]);
    expect(registered.code).toBe(2);
    expect(registered.output).toContain(`register: --flow ${out} is the same path as --out`);
    expect(existsSync(out)).toBe(false);

    const atlasFile = join(work, 'straight', 'atlas.nii.gz');
    const atlasBytes = await readFile(atlasFile);
    const intoModel = await cli(['segment', '--model', join(work, 'straight'), '--input', input, '--out', atlasFile]);
    expect(intoModel.code).toBe(2);
    expect(intoModel.output).toContain(`segment: --out ${atlasFile} is inside the --model folder`);
    expect(Buffer.compare(await readFile(atlasFile), atlasBytes)).toBe(0);
  });

  it('names the config keys when model.json comes from another model', async () => {
    const mixed = join(work, 'mixed');
    await cp(join(work, 'straight'), mixed, { recursive: true });
    const descriptor = JSON.parse(await readFile(join(mixed, 'model.json'), 'utf8'));
    descriptor.preprocess.size = 48;
    descriptor.config.encoderChannels = [4, 8, 16, 32, 64];
    await writeFile(join(mixed, 'model.json'), JSON.stringify(descriptor));
    const input = join(IXI, 'images/IXI039-HH-1261_t1.nii.gz');
    const segmented = await cli(['segment', '--model', mixed, '--input', input, '--out', join(work, 'mixed.nii.gz')]);
    expect(segmented.code).toBe(1);
    expect(segmented.output).toContain(
      `${join(mixed, 'model.safetensors')}: the checkpoint was written for another model config (encoderChannels: `,
    );
    expect(segmented.output).not.toContain('grid');

    // The training state copied over the weights.
    const swapped = join(work, 'swapped');
    await cp(join(work, 'straight'), swapped, { recursive: true });
    await cp(join(swapped, 'train-state.safetensors'), join(swapped, 'model.safetensors'));
    const stateAsWeights = await cli(['segment', '--model', swapped, '--input', input, '--out', join(work, 'swapped.nii.gz')]);
    expect(stateAsWeights.code).toBe(1);
    expect(stateAsWeights.output).toContain(
      `${join(swapped, 'model.safetensors')}: this is a training state (train-state.safetensors: weights and optimiser state), not the weights file`,
    );
  });

  it('train leaves the manifest files and foreign files alone', async () => {
    // The atlas copied next to the manifest, which then is also --out.
    const folder = join(work, 'data-folder');
    await mkdir(folder);
    const base = JSON.parse(await readFile(manifest, 'utf8'));
    await cp(base.atlas.image, join(folder, 'atlas.nii.gz'));
    await cp(base.atlas.labels, join(folder, 'atlas-labels.nii.gz'));
    const local = join(folder, 'manifest.json');
    await writeFile(local, JSON.stringify({ ...base, atlas: { image: 'atlas.nii.gz', labels: 'atlas-labels.nii.gz' } }));
    const atlasBytes = await readFile(join(folder, 'atlas.nii.gz'));
    const intoData = await cli([...trainArgs(folder), '--manifest', local]);
    expect(intoData.code).toBe(2);
    expect(intoData.output).toContain(
      `train: --out ${folder} contains ${join(folder, 'atlas.nii.gz')}, which the manifest reads and train would overwrite`,
    );
    expect(Buffer.compare(await readFile(join(folder, 'atlas.nii.gz')), atlasBytes)).toBe(0);
    expect(existsSync(join(folder, 'model.json'))).toBe(false);

    const foreign = join(work, 'foreign');
    await mkdir(foreign);
    await writeFile(join(foreign, 'losses.json'), '[1, 2, 3]');
    const clash = await cli(trainArgs(foreign));
    expect(clash.code).toBe(2);
    expect(clash.output).toContain(`train: --out ${foreign} contains no model but contains losses.json, which train would overwrite`);
    expect(await readFile(join(foreign, 'losses.json'), 'utf8')).toBe('[1, 2, 3]');
  });

  it('rejects --resume without a checkpoint', async () => {
    const empty = await cli([...trainArgs(join(work, 'never-trained')), '--resume']);
    expect(empty.code).toBe(1);
    expect(empty.output).toContain('contains no checkpoint (no model.json)');
    expect(existsSync(join(work, 'never-trained'))).toBe(false);

    const stateless = join(work, 'stateless');
    await cp(join(work, 'straight'), stateless, { recursive: true });
    await rm(join(stateless, 'train-state.safetensors'));
    const weights = await readFile(join(stateless, 'model.safetensors'));
    const resumed = await cli([...trainArgs(stateless), '--resume']);
    expect(resumed.code).toBe(1);
    expect(resumed.output).toContain('train-state.safetensors is missing, so the run cannot continue from step 4');
    expect(Buffer.compare(await readFile(join(stateless, 'model.safetensors')), weights)).toBe(0);
  });

  it('extends finished runs in stage 2', async () => {
    const extended = join(work, 'extended');
    await cp(join(work, 'straight'), extended, { recursive: true });
    const relabelled = await cli([...trainArgs(extended), '--resume', '--steps', '3']);
    expect(relabelled.code).toBe(1);
    expect(relabelled.output).toContain('finished its 2 stage-1 iterations and is at iteration 4, so --steps 3');

    const longer = await cli([...trainArgs(extended), '--resume', '--stage', '2', '--steps', '3']);
    expect(longer.code, longer.output).toBe(0);
    const descriptor = JSON.parse(await readFile(join(extended, 'model.json'), 'utf8'));
    expect(descriptor.step).toBe(5);
    expect(descriptor.training.stage1Iterations).toBe(2);
    expect(descriptor.training.stage2Iterations).toBe(3);
    const history = JSON.parse(await readFile(join(extended, 'losses.json'), 'utf8'));
    expect(history.filter((entry: { stage: number }) => entry.stage === 1)).toHaveLength(2);
    expect(history.filter((entry: { stage: number }) => entry.stage === 2)).toHaveLength(3);
  });

  it('rejects bad scans and flags early', async () => {
    const model = join(work, 'straight');
    const scan = await readNiftiFile(join(IXI, 'images/IXI039-HH-1261_t1.nii.gz'));
    const withNaN = join(work, 'nan.nii.gz');
    const data = scan.data.slice();
    data[5] = NaN;
    await writeNiftiFile(withNaN, { ...scan, data });
    const nan = await cli(['segment', '--model', model, '--input', withNaN, '--out', join(work, 'nan-seg.nii.gz')]);
    expect(nan.code).toBe(1);
    expect(nan.output).toContain(`segment: --input ${withNaN}: voxel (5, 0, 0) is NaN; the intensities must be finite`);

    const blank = join(work, 'blank.nii.gz');
    await writeNiftiFile(blank, { ...scan, data: new Float32Array(scan.data.length) });
    const fixed = join(IXI, 'images/IXI039-HH-1261_t1.nii.gz');
    const constant = await cli(['register', '--model', model, '--moving', blank, '--fixed', fixed, '--out', join(work, 'r.nii.gz')]);
    expect(constant.code).toBe(1);
    expect(constant.output).toContain(`register: --moving ${blank}: every voxel is 0, so the scan has no anatomy`);

    const labelMap = await readNiftiFile(join(IXI, 'labels/IXI048-HH-1326_labels.nii.gz'));
    const fractional = join(work, 'fractional-labels.nii.gz');
    const labelData = labelMap.data.slice();
    labelData[7] = 17.5;
    await writeNiftiFile(fractional, { ...labelMap, data: labelData, datatype: 'float32' });
    const warpedOut = join(work, 'warped.nii.gz');
    const badLabels = await cli([
      'register', '--model', model, '--moving', join(IXI, 'images/IXI048-HH-1326_t1.nii.gz'), '--fixed', fixed,
      '--out', warpedOut, '--moving-labels', fractional, '--labels-out', join(work, 'labels-out.nii.gz'),
    ]);
    expect(badLabels.code).toBe(1);
    expect(badLabels.output).toContain(`register: --moving-labels ${fractional}: `);
    expect(existsSync(warpedOut)).toBe(false);

    // The moving scan's labels moved 10 mm: a label map of another grid.
    const shiftedAffine = Float64Array.from(labelMap.affine);
    shiftedAffine[12] += 10;
    const shifted = join(work, 'shifted-labels.nii.gz');
    await writeNiftiFile(shifted, { ...labelMap, affine: shiftedAffine });
    const otherGrid = await cli([
      'register', '--model', model, '--moving', join(IXI, 'images/IXI048-HH-1326_t1.nii.gz'), '--fixed', fixed,
      '--out', warpedOut, '--moving-labels', shifted, '--labels-out', join(work, 'labels-out.nii.gz'),
    ]);
    expect(otherGrid.code).toBe(1);
    expect(otherGrid.output).toContain(`register: --moving-labels ${shifted}: grid [`);
    expect(otherGrid.output).toContain('give the label map of the --moving scan, on its grid');
    expect(existsSync(warpedOut)).toBe(false);

    const labelsOut = await cli(['register', '--model', model, '--moving', blank, '--fixed', blank, '--out', join(work, 'r.nii.gz'), '--labels-out', join(work, 'l.nii.gz')]);
    expect(labelsOut.code).toBe(2);
    expect(labelsOut.output).toContain('register: --labels-out needs --moving-labels');

    const preview = await cli(['segment', '--model', model, '--input', fixed, '--out', join(work, 'p.nii.gz'), '--preview', join(work, 'p.nii')]);
    expect(preview.code).toBe(2);
    expect(preview.output).toContain(`segment: --preview ${join(work, 'p.nii')} must end in .png`);
    expect(existsSync(join(work, 'p.nii.gz'))).toBe(false);

    const reportFile = join(work, 'report-file');
    await writeFile(reportFile, 'not a folder');
    // An output path under a file is rejected before any output is written.
    const underFile = join(reportFile, 'p.png');
    const lastOutput = await cli(['segment', '--model', model, '--input', fixed, '--out', join(work, 'q.nii.gz'), '--preview', underFile]);
    expect(lastOutput.code).toBe(2);
    expect(lastOutput.output).toContain(
      `segment: --preview ${underFile} cannot be written: a part of its folder path is a file, not a folder (${reportFile})`,
    );
    expect(existsSync(join(work, 'q.nii.gz'))).toBe(false);
    const trainIntoFile = await cli([...trainArgs(reportFile)]);
    expect(trainIntoFile.code).toBe(2);
    expect(trainIntoFile.output).toContain(`train: --out ${reportFile} cannot be the output folder: a part of its folder path is a file`);

    // One bright voxel: nothing to align, named before any work on it.
    const oneVoxel = join(work, 'one-voxel.nii.gz');
    const single = new Float32Array(scan.data.length);
    single[scan.data.length >> 1] = 100;
    await writeNiftiFile(oneVoxel, { ...scan, data: single });
    const sparse = await cli(['segment', '--model', model, '--input', oneVoxel, '--out', join(work, 'one-seg.nii.gz')]);
    expect(sparse.code).toBe(1);
    expect(sparse.output).toContain(`segment: --input ${oneVoxel}: only 1 voxel lies above the foreground threshold`);
    expect(sparse.output).toContain('too few to find and align the anatomy (at least 64 are needed)');
    const evaluated = await cli(['evaluate', '--model', model, '--manifest', manifest, '--out', reportFile]);
    expect(evaluated.code).toBe(2);
    expect(evaluated.output).toContain(
      `evaluate: --out ${reportFile} cannot be the output folder: a part of its folder path is a file, not a folder`,
    );

    // Test labels that cannot be scored: grouped classes without the table, an empty label map.
    const base = JSON.parse(await readFile(manifest, 'utf8'));
    const tableless = join(work, 'no-structures.json');
    await writeFile(tableless, JSON.stringify({ ...base, structures: undefined }));
    const ungrouped = await cli(['evaluate', '--model', model, '--manifest', tableless, '--out', join(work, 'e1')]);
    expect(ungrouped.code).toBe(1);
    expect(ungrouped.output).toContain(`but the manifest ${tableless} names no "structures" table`);
    const emptyLabels = join(work, 'empty-labels.nii.gz');
    const testLabels = await readNiftiFile(base.test[0].labels);
    await writeNiftiFile(emptyLabels, { ...testLabels, data: new Float32Array(testLabels.data.length) }, { labels: true });
    const unlabelled = join(work, 'empty-test-labels.json');
    await writeFile(unlabelled, JSON.stringify({ ...base, test: [{ image: base.test[0].image, labels: emptyLabels }] }));
    const nothing = await cli(['evaluate', '--model', model, '--manifest', unlabelled, '--out', join(work, 'e2')]);
    expect(nothing.code).toBe(1);
    expect(nothing.output).toContain(`evaluate: test scan 1 labels ${emptyLabels}: every voxel is 0 (background)`);

    const untrained = join(work, 'no-train.json');
    await writeFile(untrained, JSON.stringify({ ...JSON.parse(await readFile(manifest, 'utf8')), train: [] }));
    const noScans = await cli([...trainArgs(join(work, 'no-train')), '--manifest', untrained]);
    expect(noScans.code).toBe(1);
    expect(noScans.output).toContain(`train: the manifest ${untrained} lists no training scans`);

    const blankTrain = join(work, 'blank-train.json');
    await writeFile(blankTrain, JSON.stringify({ ...JSON.parse(await readFile(manifest, 'utf8')), train: [blank] }));
    const blankScan = await cli([...trainArgs(join(work, 'blank-train')), '--manifest', blankTrain]);
    expect(blankScan.code).toBe(1);
    expect(blankScan.output).toContain(`rrl-medsam train: training scan 1 ${blank}: every voxel is 0`);
    expect(blankScan.output).not.toContain('train: train:');

    // A missing --sam file is reported before the scans are read, where
    // the blank training scan would fail.
    const missingSam = join(work, 'missing.pth');
    const noSam = await cli([...trainArgs(join(work, 'no-sam')), '--manifest', blankTrain, '--sam', missingSam]);
    expect(noSam.code).toBe(1);
    expect(noSam.output).toContain(`train: --sam ${missingSam}: cannot read the file`);
    expect(noSam.output).not.toContain('every voxel is 0');

    const notSam = join(work, 'not-sam.pth');
    await writeFile(notSam, 'a text file, not a checkpoint');
    const sam = await cli([...trainArgs(join(work, 'sam')), '--sam', notSam]);
    expect(sam.code).toBe(1);
    expect(sam.output).toContain(`train: --sam ${notSam}: `);
    expect(sam.output).toContain('expected the official SAM checkpoint (sam_vit_b_01ec64.pth)');

    // Flags rejected as usage errors (exit 2) before any folder is written.
    const usageErrors: [string, string[], string][] = [
      ['no-steps', ['--steps', '0'], 'train: --steps must be >= 1, got 0'],
      ['alpha', ['--alpha', '2'], 'train: --alpha must be <= 1, got 2'],
      ['teacher', ['--teacher-size', '100'], 'train: --teacher-size 100 must be a multiple of 16'],
      ['window', ['--ncc-window', '4'], 'train: --ncc-window 4 must be odd'],
      [
        'wide',
        ['--ncc-window', '33'],
        'train: --ncc-window 33 is larger than the --size 32 grid; use an odd window of at most 31',
      ],
    ];
    for (const [folder, flags, expected] of usageErrors) {
      const result = await cli([...trainArgs(join(work, folder)), ...flags]);
      expect(result.code, folder).toBe(2);
      expect(result.output).toContain(expected);
      expect(existsSync(join(work, folder)), folder).toBe(false);
    }

    const demoSize = await cli(['demo', '--size', '40', '--out', join(work, 'demo-40')]);
    expect(demoSize.code).toBe(2);
    expect(demoSize.output).toContain('demo: --size 40 must be a multiple of 16 from 32 to 256');
    expect(existsSync(join(work, 'demo-40'))).toBe(false);
    const demoIntoFile = await cli(['demo', '--quick', '--out', reportFile]);
    expect(demoIntoFile.code).toBe(2);
    expect(demoIntoFile.output).toContain(`demo: --out ${reportFile} cannot be the output folder`);

    const benchSize = await cli(['bench', '--size', '40']);
    expect(benchSize.code).toBe(2);
    expect(benchSize.output).toContain('bench: --size 40 must be a multiple of 16 from 32 to 256');
    expect(benchSize.output).toContain('try 48');
    const huge = await cli([...trainArgs(join(work, 'huge')), '--size', '4096']);
    expect(huge.code).toBe(2);
    expect(huge.output).toContain('train: --size 4096 must be a multiple of 16 from 32 to 256');
    expect(huge.output).toContain('try 256');
  });

  it('stops a diverging run', async () => {
    const out = join(work, 'diverged');
    const diverged = await cli([...trainArgs(out), '--lr', '1e9', '--checkpoint-every', '10']);
    expect(diverged.code).toBe(1);
    expect(diverged.output).toMatch(/train: training diverged at iteration \d \(stage \d\): \w+ (NaN|-?Infinity)/);
    expect(diverged.output).toContain('The model folder keeps its checkpoint of iteration 0; lower --lr (now 1000000000)');
    const descriptor = JSON.parse(await readFile(join(out, 'model.json'), 'utf8'));
    expect(descriptor.step).toBe(0);
  });
});
