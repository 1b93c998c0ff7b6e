// Evaluation of a trained model: Dice, the 95th-percentile Hausdorff
// distance, the folding fraction of a displacement, the mean local NCC,
// their summaries over a test set, the report renderings and PNG panels.

export { diceScores } from './dice.js';
export type { LabelMap } from './dice.js';
export { hausdorff95, hausdorff95Scores } from './hausdorff.js';
export { squaredDistanceTransform } from './distance-transform.js';
export type { Shape3 } from './distance-transform.js';
export { foldingFraction, jacobianDeterminant } from './folding.js';
export { meanLocalNcc } from './ncc.js';
export { meanStd, summarize } from './summary.js';
export type { Statistics, Summary } from './summary.js';
export { formatReport, formatReportMarkdown } from './report.js';
export type { EvaluationReport } from './report.js';
export {
  EVALUATION_PANEL_TITLES,
  evaluationPanels,
} from './panels.js';
export type { EvaluationCase, EvaluationPanelOptions } from './panels.js';
