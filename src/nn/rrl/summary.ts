// Parameter counts of an RrlMedSam per module, as data and as a table.

import type { Module } from '../module.js';
import { SAM_VIT_B_PARAMETERS } from './config.js';

export interface SummaryRow {
  /** Dotted module name, such as "medical_decoder.prompt_encoder". */
  name: string;
  /** Class of the module, such as "Encoder3d". */
  type: string;
  parameters: number;
}

export interface ModelSummary {
  /** The top-level modules, each followed by its direct submodules. */
  rows: SummaryRow[];
  total: number;
  /** Parameters of one encoder (f_lie and f_med have the same count). */
  encoderParameters: number;
  /** encoderParameters / SAM ViT-B's 89,670,912 image encoder parameters. */
  encoderShareOfSamVitB: number;
  /** The rows as an aligned text table with a total line. */
  table: string;
}

/** Modules whose submodules the table lists one level further. */
const EXPANDED = new Set(['medical_decoder']);

/**
 * Counts the parameters of `model`'s top-level modules (and of the medical
 * decoder's parts). `model` is an RrlMedSam, typed structurally so this
 * file does not import the model.
 */
export function modelSummary(
  model: Module & { generalEncoder: Module },
): ModelSummary {
  const rows: SummaryRow[] = [];
  for (const [name, child] of model.namedChildren()) {
    rows.push({ name, type: child.typeName, parameters: child.parameterCount() });
    if (!EXPANDED.has(name)) continue;
    for (const [part, grandchild] of child.namedChildren()) {
      rows.push({
        name: `${name}.${part}`,
        type: grandchild.typeName,
        parameters: grandchild.parameterCount(),
      });
    }
  }
  const total = model.parameterCount();
  const encoderParameters = model.generalEncoder.parameterCount();
  const encoderShareOfSamVitB = encoderParameters / SAM_VIT_B_PARAMETERS;
  return {
    rows,
    total,
    encoderParameters,
    encoderShareOfSamVitB,
    table: formatTable(rows, total, encoderParameters, encoderShareOfSamVitB),
  };
}

function formatTable(
  rows: readonly SummaryRow[],
  total: number,
  encoderParameters: number,
  share: number,
): string {
  const count = (n: number) => n.toLocaleString('en-US');
  const nameWidth = Math.max(6, ...rows.map((row) => row.name.length));
  const typeWidth = Math.max(4, ...rows.map((row) => row.type.length));
  const numberWidth = Math.max(10, count(total).length);
  const line = (name: string, type: string, value: string) =>
    `${name.padEnd(nameWidth)}  ${type.padEnd(typeWidth)}  ` +
    value.padStart(numberWidth);
  const lines = [
    line('module', 'type', 'parameters'),
    ...rows.map((row) => line(row.name, row.type, count(row.parameters))),
    line('total', '', count(total)),
    `encoder: ${count(encoderParameters)} parameters, ` +
      `${(100 * share).toFixed(2)}% of SAM ViT-B's image encoder ` +
      `(${count(SAM_VIT_B_PARAMETERS)})`,
  ];
  return lines.join('\n');
}
