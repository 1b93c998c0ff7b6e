// The losses and metrics of registration and segmentation training: local
// NCC, the smoothness (l2 gradient) loss, soft Dice with one-hot encoding,
// and the hard Dice score of label maps.

export { nccLoss } from './ncc.js';
export type { NccOptions } from './ncc.js';
export { smoothnessLoss } from './smoothness.js';
export { diceLoss, oneHot } from './dice.js';
export type { DiceLossOptions, LabelArray, LabelVolume } from './dice.js';
export { diceScore } from './dice-score.js';
export type { DiceScores } from './dice-score.js';
