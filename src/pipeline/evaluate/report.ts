// The evaluation report: its JSON shape (report.json) and its renderings as
// a text table for the terminal and as Markdown.

import type { RefineMode } from '../refine.js';
import type { Statistics, Summary } from './summary.js';

/** Scores of a trained model on the test set, as written to report.json. */
export interface EvaluationReport {
  /**
   * Teacher of the distillation, such as RANDOM_TEACHER from teacher.ts
   * or "SAM vit_b (<weights identity>)". Every rendering starts with it.
   */
  teacher: string;
  /** Edge of the cubic model grid in voxels (64 for 64^3). */
  size: number;
  /** Training steps run in each stage. */
  steps: { stage1: number; stage2: number };
  /** Dice per structure, background excluded. */
  dice: {
    /** Of the final segmentation yhat_m. */
    final: Summary;
    /** Of the general branch's segmentation yhat_g. */
    general: Summary;
    /** Of the atlas labels warped by the predicted displacement. */
    registration: Summary;
    /** Of the atlas labels unwarped (the identity transform). */
    identity: Summary;
    /** Of the atlas labels warped by the refined field (see `refine`). */
    refined?: Summary;
  };
  /**
   * Mean local NCC of the atlas image, warped and unwarped, vs target, and
   * warped by the refined field.
   */
  ncc: { registration: Statistics; identity: Statistics; refined?: Statistics };
  /**
   * Present when the registration was also scored after instance
   * optimisation: its Adam steps per case, what they trained (refine.ts)
   * and the folding fraction of the refined fields.
   */
  refine?: { steps: number; mode?: RefineMode; folding: Statistics };
  /** Fraction of voxels where the displacement folds (det J <= 0). */
  folding: Statistics;
  /** 95th-percentile Hausdorff distance per structure, in mm. */
  hd95: { final: Summary; registration: Summary };
  /** Further summaries by title, such as Dice over other label sets. */
  extra?: Record<string, Summary>;
}

/** Words of the report's heading for each refinement mode (none for reports older than the mode). */
const REFINE_MODE_WORDS: Record<RefineMode | 'unknown', string> = {
  field: ', moving the displacement field',
  network: ', training the registration network',
  unknown: '',
};

const DICE_COLUMNS = ['final', 'general', 'registration', 'identity', 'refined'] as const;
type DiceColumn = (typeof DICE_COLUMNS)[number];

/** Returns the report's Dice columns: 'refined' only after instance optimisation. */
function diceColumns(report: EvaluationReport): DiceColumn[] {
  return DICE_COLUMNS.filter((column) => report.dice[column] !== undefined);
}

interface ReportTable {
  heading: string[];
  header: string[];
  rows: string[][];
  lines: [string, string][];
}

/** Format of a statistic's cell: the test set's case count and the sign. */
interface CellFormat {
  /** Cases in the test set. A cell with fewer values shows "(n=k)". */
  cases: number;
  plusMinus: string;
}

/**
 * Formats mean and std with `digits` decimals as "0.812 +- 0.031" (as
 * percentages when `percent` is set), adding "(n=k)" when only k of the
 * cases entered it, or "n/a" if none did.
 */
function formatStatistics(
  statistics: Statistics | undefined,
  format: CellFormat,
  digits: number,
  percent = false,
): string {
  if (!statistics || !(statistics.count > 0)) return 'n/a';
  const scale = percent ? 100 : 1;
  const unit = percent ? '%' : '';
  const mean = (statistics.mean * scale).toFixed(digits) + unit;
  const std = (statistics.std * scale).toFixed(digits) + unit;
  const { count } = statistics;
  const partial = count < format.cases ? ` (n=${count})` : '';
  return `${mean} ${format.plusMinus} ${std}${partial}`;
}

/** Formats named statistics as "registration 0.363 +- 0.011, identity ...". */
function formatNamed(
  entries: [string, Statistics][],
  format: CellFormat,
  digits: number,
): string {
  return entries
    .map(([name, value]) => {
      return `${name} ${formatStatistics(value, format, digits)}`;
    })
    .join(', ');
}

/** Returns the structure names of the Dice summaries, in first-seen order. */
function structureNames(report: EvaluationReport): string[] {
  const names = new Set<string>();
  for (const column of diceColumns(report)) {
    for (const name of Object.keys(report.dice[column]!.perLabel)) {
      names.add(name);
    }
  }
  return [...names];
}

/** Lays out the report's cells once for both renderings. */
function reportTable(report: EvaluationReport, plusMinus: string): ReportTable {
  const { dice, ncc, hd95 } = report;
  const columns = diceColumns(report);
  const cases = Math.max(...columns.map((column) => dice[column]!.count));
  const format: CellFormat = { cases, plusMinus };
  const diceCell = (statistics: Statistics | undefined) =>
    formatStatistics(statistics, format, 3);
  const rows = structureNames(report).map((name) => [
    name,
    ...columns.map((column) => diceCell(dice[column]!.perLabel[name])),
  ]);
  rows.push(['mean', ...columns.map((column) => diceCell(dice[column]))]);

  let folding = formatStatistics(report.folding, format, 3, true);
  if (report.refine) folding += `, refined ${formatStatistics(report.refine.folding, format, 3, true)}`;
  const nccEntries: [string, Statistics][] = [
    ['registration', ncc.registration],
    ['identity', ncc.identity],
  ];
  if (ncc.refined) nccEntries.push(['refined', ncc.refined]);
  const lines: [string, string][] = [
    [
      'mean local NCC',
      formatNamed(nccEntries, format, 3),
    ],
    ['folding (det J <= 0)', `${folding} of voxels`],
    [
      'HD95 (mm)',
      formatNamed(
        [
          ['final', hd95.final],
          ['registration', hd95.registration],
        ],
        format,
        2,
      ),
    ],
  ];
  for (const [title, summary] of Object.entries(report.extra ?? {})) {
    lines.push([title, formatStatistics(summary, format, 3)]);
  }

  const heading = [
    `teacher: ${report.teacher}`,
    `grid ${report.size}^3, ${report.steps.stage1} stage 1 steps, ` +
      `${report.steps.stage2} stage 2 steps, ${cases} test cases`,
  ];
  if (report.refine) {
    heading.push(
      `refined: the registration after ${report.refine.steps} Adam ${report.refine.steps === 1 ? 'step' : 'steps'} ` +
        `on each case alone (image terms only)${REFINE_MODE_WORDS[report.refine.mode ?? 'unknown']}`,
    );
  }
  const header = ['Dice', ...columns];
  return { heading, header, rows, lines };
}

/**
 * Renders a report as a plain-text table. The teacher comes first, then
 * the grid and steps. One row per structure shows the final, general,
 * registration and identity Dice as "mean +- std" over the test cases,
 * followed by a mean row and lines for NCC, folding, HD95 and any extra
 * summaries. A cell shows "(n=k)" when only k cases scored it, and "n/a"
 * when none did.
 */
export function formatReport(report: EvaluationReport): string {
  const table = reportTable(report, '+-');
  const cells = [table.header, ...table.rows];
  const widths = table.header.map((_, column) =>
    Math.max(...cells.map((row) => row[column].length)),
  );
  const formatRow = (row: string[]) =>
    row
      .map((cell, column) => cell.padEnd(widths[column]))
      .join('  ')
      .trimEnd();
  const labelWidth = Math.max(...table.lines.map(([label]) => label.length));
  const formatLine = ([label, value]: [string, string]) =>
    `${label.padEnd(labelWidth)}  ${value}`;
  return [
    ...table.heading,
    '',
    ...cells.map(formatRow),
    '',
    ...table.lines.map(formatLine),
  ].join('\n');
}

function markdownCell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

/**
 * Renders a report as Markdown with the same content as `formatReport`:
 * the teacher and grid as a paragraph, the Dice table, and a table of the
 * other metrics.
 */
export function formatReportMarkdown(report: EvaluationReport): string {
  const table = reportTable(report, '±');
  const row = (cells: string[]) =>
    `| ${cells.map(markdownCell).join(' | ')} |`;
  const rows = table.rows.map((cells, index) =>
    index === table.rows.length - 1
      ? row([`**${cells[0]}**`, ...cells.slice(1)])
      : row(cells),
  );
  return [
    `**Teacher:** ${markdownCell(report.teacher)}`,
    '',
    table.heading[1].replace(/^grid/, 'Grid') + '.',
    '',
    ...table.heading.slice(2).flatMap((line) => [line.replace(/^refined:/, 'Refined:') + '.', '']),
    row(table.header.map((name, i) => (i > 0 ? `${name} Dice` : 'Structure'))),
    row(table.header.map((_, i) => (i === 0 ? '---' : '---:'))),
    ...rows,
    '',
    row(['Metric', 'Value']),
    row(['---', '---']),
    ...table.lines.map(([label, value]) => row([label, value])),
    '',
  ].join('\n');
}
