#!/usr/bin/env node
// The rrl-medsam command line: train, segment, register, evaluate, demo
// and bench. Each verb declares its flags once, for parsing and --help.
// Errors print one message that names what was wrong and how to fix it,
// with exit code 2 for a bad command line and 1 for a failed run.

import { pathToFileURL } from 'node:url';
import { NoAdapterError } from '../device.js';
import { setLogLevel } from '../log.js';
import { UsageError, parseFlags, verbHelp, type ParsedFlags, type VerbSpec } from './args.js';
import { runBench } from './bench.js';
import { runDemo } from './demo.js';
import { runEvaluate } from './evaluate.js';
import { runRegister, runSegment } from './infer.js';
import { defaultCacheFolder, runTraining, StoppedError } from './train.js';

const say = (line: string) => process.stderr.write(line + '\n');

const TRAIN_FLAGS = {
  manifest: { kind: 'string', value: 'FILE', help: 'dataset manifest (JSON): atlas, train and test scans', required: true },
  out: { kind: 'string', value: 'DIR', help: 'model folder to write (or, with --resume, to continue)', required: true },
  stage: { kind: 'string', value: 'STAGE', help: 'stages to run', choices: ['1', '2', 'both'], default: 'both' },
  steps: { kind: 'integer', value: 'N', help: 'iterations per stage', min: 1, default: 300 },
  size: { kind: 'integer', value: 'N', help: 'voxels per side of the training grid (a multiple of 16 from 32 to 256)', min: 32, default: 64 },
  preset: { kind: 'string', value: 'NAME', help: 'network widths', choices: ['cpu', 'default', 'tiny'], default: 'cpu' },
  variant: {
    kind: 'string',
    value: 'NAME',
    help: 'training variant (the paper\'s ablations)',
    choices: ['full', 'baseline', 'st', 'ts', 'no-prompt'],
    default: 'full',
  },
  sam: { kind: 'string', value: 'FILE', help: 'official SAM checkpoint (sam_vit_b_01ec64.pth) to distil from; without it the teacher is randomly initialised' },
  'sam-config': { kind: 'string', value: 'NAME', help: 'encoder of the random teacher', choices: ['tiny', 'small', 'vit_b'], default: 'small' },
  'teacher-size': { kind: 'integer', value: 'PX', help: 'slice size fed to the teacher (a multiple of 16)', min: 16, default: 128 },
  seed: { kind: 'integer', value: 'N', help: 'seed of the weights, scan order and augmentation', min: 0, default: 0 },
  lr: { kind: 'number', value: 'LR', help: 'Adam learning rate', min: 0, default: 1e-3 },
  alpha: { kind: 'number', value: 'A', help: 'EMA coefficient of stage 2', min: 0, max: 1, default: 0.99 },
  'weight-smoothness': { kind: 'number', value: 'W', help: 'l1, the weight of the smoothness loss in L_reg', min: 0, default: 1 },
  'weight-similarity': { kind: 'number', value: 'W', help: 'l2, the weight of the NCC loss in L_reg', min: 0, default: 1 },
  'weight-dice': { kind: 'number', value: 'W', help: 'l3, the weight of the warped-label Dice loss in L_reg', min: 0, default: 1 },
  'weight-ce': {
    kind: 'number',
    value: 'W',
    help: 'weight of a cross-entropy term added to both segmentation losses (0: Dice alone, as in RRL-MedSAM)',
    min: 0,
    default: 0,
  },
  'ncc-window': {
    kind: 'integer',
    value: 'N',
    help: 'edge in voxels of the local NCC window of L_sim (odd, from 3 to --size - 1)',
    min: 3,
    default: 9,
  },
  'checkpoint-every': { kind: 'integer', value: 'N', help: 'write a checkpoint every N iterations', min: 1, default: 25 },
  'log-every': { kind: 'integer', value: 'N', help: 'print a summary line every N iterations', min: 1, default: 25 },
  augment: { kind: 'boolean', help: 'augment atlas and target (rotation, scaling, elastic); --no-augment turns it off', default: true },
  resume: { kind: 'boolean', help: 'continue the run in --out from its last checkpoint (bitwise the same result)' },
  cache: { kind: 'string', value: 'DIR', help: 'teacher feature cache', default: defaultCacheFolder() },
  verbose: { kind: 'boolean', help: 'log the library\'s info messages' },
} as const satisfies VerbSpec['flags'];

const VERBS: Record<string, VerbSpec & { run: (flags: ParsedFlags, given: Set<string>) => Promise<unknown> }> = {
  train: {
    name: 'train',
    summary: 'train a model (both stages) from a manifest',
    description:
      'Preprocesses the atlas and the unlabelled training scans of the manifest onto one grid\n' +
      '(affine pre-alignment to the atlas), extracts the SAM teacher\'s features, and trains\n' +
      'stage 1 (distillation) and stage 2 (mutual EMA). The model folder --out holds the\n' +
      'weights, the config, the optimiser state, the atlas and the label table, and is\n' +
      'checkpointed atomically, so --resume continues a stopped run to the same weights.',
    flags: TRAIN_FLAGS,
    examples: [
      'rrl-medsam train --manifest data/ixi-brain/manifest.json --out runs/ixi --steps 300',
      'rrl-medsam train --manifest m.json --out runs/ixi --resume',
      'rrl-medsam train --manifest m.json --out runs/gpu --size 128 --preset default --sam sam_vit_b_01ec64.pth',
    ],
    run: (flags, given) => runTraining(trainSettings(flags, given)),
  },
  segment: {
    name: 'segment',
    summary: 'segment a scan with a trained model',
    description:
      'Segments one 3D scan of any size, spacing and orientation. The label map is written on\n' +
      'the input\'s own grid and affine, with the model\'s structure ids (see model.json), so it\n' +
      'overlays the input in any viewer. --warped-labels also writes the atlas labels warped by\n' +
      'the registration branch, refined by --refine N steps on this scan when given.',
    flags: {
      model: { kind: 'string', value: 'DIR', help: 'model folder written by train or demo', required: true },
      input: { kind: 'string', value: 'FILE', help: 'scan to segment (.nii or .nii.gz)', required: true },
      out: { kind: 'string', value: 'FILE', help: 'label map to write (.nii.gz)', required: true },
      warped: { kind: 'string', value: 'FILE', help: 'also write the atlas image warped onto the scan' },
      'warped-labels': { kind: 'string', value: 'FILE', help: 'also write the atlas labels warped onto the scan' },
      preview: { kind: 'string', value: 'FILE', help: 'also write a PNG of the scan with the overlay' },
      refine: {
        kind: 'integer',
        value: 'N',
        help: 'Adam steps on this scan before the atlas is warped (needs --warped or --warped-labels)',
        min: 0,
        max: 1000,
        default: 0,
      },
      verbose: { kind: 'boolean', help: 'log the library\'s info messages' },
    },
    examples: ['rrl-medsam segment --model runs/demo/model --input scan.nii.gz --out seg.nii.gz'],
    run: (flags) =>
      runSegment(
        {
          model: flags.model as string,
          input: flags.input as string,
          out: flags.out as string,
          warped: flags.warped as string | undefined,
          warpedLabels: flags['warped-labels'] as string | undefined,
          preview: flags.preview as string | undefined,
          refine: flags.refine as number,
        },
        say,
      ),
  },
  register: {
    name: 'register',
    summary: 'register a moving scan onto a fixed scan',
    description:
      'Aligns --moving onto --fixed (affine, then the model\'s deformation) and writes the warped\n' +
      'moving scan on the fixed scan\'s own grid; optionally the displacement field and the\n' +
      'moving scan\'s labels warped with nearest sampling. --refine N first optimises the predicted\n' +
      'displacement field for N Adam steps on this pair alone (image terms only; the model folder\n' +
      'is unchanged).',
    flags: {
      model: { kind: 'string', value: 'DIR', help: 'model folder written by train or demo', required: true },
      moving: { kind: 'string', value: 'FILE', help: 'scan to move', required: true },
      fixed: { kind: 'string', value: 'FILE', help: 'scan to move onto', required: true },
      out: { kind: 'string', value: 'FILE', help: 'warped moving scan to write', default: 'warped.nii.gz' },
      flow: { kind: 'string', value: 'FILE', help: 'displacement field to write (NIfTI vector, mm)' },
      'moving-labels': { kind: 'string', value: 'FILE', help: 'label map of the moving scan to warp' },
      'labels-out': { kind: 'string', value: 'FILE', help: 'warped labels to write' },
      refine: {
        kind: 'integer',
        value: 'N',
        help: 'Adam steps on the displacement field of this pair before it is taken',
        min: 0,
        max: 1000,
        default: 0,
      },
      verbose: { kind: 'boolean', help: 'log the library\'s info messages' },
    },
    examples: ['rrl-medsam register --model runs/demo/model --moving a.nii.gz --fixed b.nii.gz --out a-on-b.nii.gz'],
    run: (flags) =>
      runRegister(
        {
          model: flags.model as string,
          moving: flags.moving as string,
          fixed: flags.fixed as string,
          out: flags.out as string,
          flow: flags.flow as string | undefined,
          movingLabels: flags['moving-labels'] as string | undefined,
          labelsOut: flags['labels-out'] as string | undefined,
          refine: flags.refine as number,
        },
        say,
      ),
  },
  evaluate: {
    name: 'evaluate',
    summary: 'score a model on the test scans of a manifest',
    description:
      'Segments and registers every test scan of the manifest and scores the final segmentation,\n' +
      'the general branch, the registration and the identity transform (Dice per structure),\n' +
      'with local NCC, folding fraction and HD95. Writes report.json, report.md, PNG panels and\n' +
      'the predicted label maps (on each input\'s grid) into --out. --refine N also scores the\n' +
      'registration after N Adam steps on each case\'s displacement field (the "refined" column).',
    flags: {
      model: { kind: 'string', value: 'DIR', help: 'model folder written by train or demo', required: true },
      manifest: { kind: 'string', value: 'FILE', help: 'manifest whose test scans are scored', required: true },
      out: { kind: 'string', value: 'DIR', help: 'folder for the report and outputs (default: <model>/evaluation)' },
      panels: { kind: 'integer', value: 'N', help: 'PNG panels for the first N cases', min: 0, default: 2 },
      refine: {
        kind: 'integer',
        value: 'N',
        help: 'also score the registration after N Adam steps on each case\'s displacement field',
        min: 0,
        max: 1000,
        default: 0,
      },
      verbose: { kind: 'boolean', help: 'log the library\'s info messages' },
    },
    examples: ['rrl-medsam evaluate --model runs/demo/model --manifest data/ixi-brain/manifest.json'],
    run: (flags) =>
      runEvaluate(
        {
          model: flags.model as string,
          manifest: flags.manifest as string,
          out: flags.out as string | undefined,
          panels: flags.panels as number,
          refine: flags.refine as number,
        },
        say,
      ),
  },
  demo: {
    name: 'demo',
    summary: 'the one-shot experiment on the embedded IXI brain scans',
    description:
      'Trains on the embedded IXI scans (atlas IXI012, five unlabelled training scans), evaluates\n' +
      'on the four held-out scans and writes the model, report and previews into --out. The full\n' +
      'run is 300 + 300 iterations at 64^3 with the cpu preset, l3 = 0 (L_reg without its Dice\n' +
      'term) and learning rate 3e-3, scored with the registration also refined by 100 steps per\n' +
      'test scan; --quick runs a few-minute version.\n' +
      '--ablation also trains and scores the paper\'s five variants at the --quick setting.',
    flags: {
      out: { kind: 'string', value: 'DIR', help: 'output folder', default: 'runs/demo' },
      quick: { kind: 'boolean', help: 'a few-minute run (fewer iterations) to try things out' },
      steps: { kind: 'integer', value: 'N', help: 'iterations per stage (overrides the default of the mode)', min: 1 },
      size: { kind: 'integer', value: 'N', help: 'grid size (a multiple of 16 from 32 to 256)', min: 32, default: 64 },
      ablation: { kind: 'boolean', help: 'also run the five-row ablation table at the --quick setting' },
      sam: { kind: 'string', value: 'FILE', help: 'official SAM checkpoint to distil from' },
      refine: {
        kind: 'integer',
        value: 'N',
        help: 'instance optimisation steps per test scan (default 100)',
        min: 0,
        max: 1000,
      },
      resume: { kind: 'boolean', help: 'continue an interrupted demo in --out' },
      cache: { kind: 'string', value: 'DIR', help: 'teacher feature cache', default: defaultCacheFolder() },
      verbose: { kind: 'boolean', help: 'log the library\'s info messages' },
    },
    examples: ['rrl-medsam demo', 'rrl-medsam demo --quick --out runs/quick'],
    run: (flags) =>
      runDemo(
        {
          out: flags.out as string,
          quick: Boolean(flags.quick),
          steps: flags.steps as number | undefined,
          size: flags.size as number,
          ablation: Boolean(flags.ablation),
          sam: flags.sam as string | undefined,
          resume: Boolean(flags.resume),
          cache: flags.cache as string,
          refine: flags.refine as number | undefined,
        },
        say,
      ),
  },
  bench: {
    name: 'bench',
    summary: 'seconds per training iteration of each stage on this machine',
    description:
      'Times training iterations of both stages on phantom volumes and prints seconds per\n' +
      'iteration, process CPU time and device memory. Kernel benchmarks against peers live in\n' +
      'bench/ of the repository (npm run bench).',
    flags: {
      size: { kind: 'integer', value: 'N', help: 'grid size (a multiple of 16 from 32 to 256)', min: 32, default: 64 },
      preset: { kind: 'string', value: 'NAME', help: 'network widths', choices: ['cpu', 'default', 'tiny'], default: 'cpu' },
      iterations: { kind: 'integer', value: 'N', help: 'timed iterations per stage', min: 1, default: 3 },
      warmup: { kind: 'integer', value: 'N', help: 'untimed iterations first', min: 0, default: 1 },
      classes: {
        kind: 'integer',
        value: 'N',
        help: 'output classes, background included (the IXI demo has 43)',
        min: 5,
        default: 43,
      },
      augment: { kind: 'boolean', help: 'augment as train does; --no-augment turns it off', default: true },
      'weight-dice': {
        kind: 'number',
        value: 'W',
        help: 'l3 of L_reg: 1 as train uses, 0 as the demo uses',
        min: 0,
        default: 1,
      },
      verbose: { kind: 'boolean', help: 'log the library\'s info messages' },
    },
    examples: ['rrl-medsam bench --size 64', 'rrl-medsam bench --size 64 --weight-dice 0'],
    run: (flags) =>
      runBench(
        {
          size: flags.size as number,
          preset: flags.preset as 'cpu' | 'default' | 'tiny',
          iterations: flags.iterations as number,
          warmup: flags.warmup as number,
          classes: flags.classes as number,
          augment: flags.augment as boolean,
          registrationDice: flags['weight-dice'] as number,
        },
        say,
      ),
  },
};

function trainSettings(flags: ParsedFlags, given: Set<string>) {
  return {
    manifest: flags.manifest as string,
    out: flags.out as string,
    stage: flags.stage as '1' | '2' | 'both',
    steps: flags.steps as number,
    size: flags.size as number,
    preset: flags.preset as 'cpu' | 'default' | 'tiny',
    variant: flags.variant as 'full',
    seed: flags.seed as number,
    lr: flags.lr as number,
    alpha: flags.alpha as number,
    weights: {
      smoothness: flags['weight-smoothness'] as number,
      similarity: flags['weight-similarity'] as number,
      registrationDice: flags['weight-dice'] as number,
      segmentationCrossEntropy: flags['weight-ce'] as number,
    },
    nccWindow: flags['ncc-window'] as number,
    sam: flags.sam as string | undefined,
    samConfig: flags['sam-config'] as 'small',
    teacherSize: flags['teacher-size'] as number,
    checkpointEvery: flags['checkpoint-every'] as number,
    logEvery: flags['log-every'] as number,
    resume: Boolean(flags.resume),
    augment: flags.augment !== false,
    cache: flags.cache as string,
    given,
  };
}

function mainHelp(): string {
  const width = Math.max(...Object.keys(VERBS).map((name) => name.length));
  return [
    'usage: rrl-medsam <command> [options]',
    '',
    'One-shot 3D medical image segmentation (RRL-MedSAM) on WebGPU.',
    '',
    'commands:',
    ...Object.values(VERBS).map((verb) => `  ${verb.name.padEnd(width)}  ${verb.summary}`),
    '',
    'rrl-medsam <command> --help shows the options of a command.',
    'Start with: rrl-medsam demo --quick',
  ].join('\n');
}

/** Runs the command line `argv` (without node and the script); returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [verbName, ...rest] = argv;
  if (!verbName || verbName === '--help' || verbName === '-h' || verbName === 'help') {
    process.stdout.write(mainHelp() + '\n');
    return verbName ? 0 : 2;
  }
  const verb = VERBS[verbName];
  if (!verb) {
    process.stderr.write(`rrl-medsam: unknown command "${verbName}"\n\n${mainHelp()}\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(verbHelp(verb) + '\n');
    return 0;
  }
  try {
    const flags = parseFlags(verb, rest, (line) => process.stderr.write(line + '\n'));
    const given = new Set(
      rest.filter((word) => word.startsWith('--')).map((word) => word.slice(2).split('=')[0].replace(/^no-/, '')),
    );
    if (flags.verbose) setLogLevel('info');
    else setLogLevel('warn');
    await verb.run(flags, given);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`rrl-medsam ${error.message}\nrun rrl-medsam ${verbName} --help for the options\n`);
      return 2;
    }
    const message = error instanceof Error ? error.message : String(error);
    // Most messages already start with the verb ("train: ...", "train --resume: ...").
    const named = message.startsWith(`${verbName}: `) || message.startsWith(`${verbName} --`);
    process.stderr.write(named ? `rrl-medsam ${message}\n` : `rrl-medsam ${verbName}: ${message}\n`);
    if (error instanceof NoAdapterError) return 1;
    // 128 + SIGINT, as shells report a run ended by Ctrl-C.
    if (error instanceof StoppedError) return 130;
    if (process.env.RRL_MEDSAM_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    return 1;
  }
}

const invokedDirectly =
  process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (invokedDirectly) {
  // `npm run cli` and `npm run demo` start in the package folder. npm keeps
  // the folder they were typed in as INIT_CWD, so relative paths resolve there.
  const script = process.env.npm_lifecycle_event;
  const typedIn = process.env.INIT_CWD;
  if ((script === 'cli' || script === 'demo') && typedIn) {
    process.chdir(typedIn);
  }
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`rrl-medsam: ${String(error)}\n`);
      process.exit(1);
    },
  );
}
