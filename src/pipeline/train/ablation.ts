// The training variants of the ablation study in the RRL-MedSAM paper
// (Wang et al., "SAM-Guided Robust Representation Learning for One-Shot 3D
// Medical Image Segmentation", Table 2), as switches of the two-stage loop.
//
// S, the student, is the medical encoder f_med (trained by gradient first
// in each iteration, as in mean teacher) and T, the teacher, is the general
// encoder f_lie. Stage 2's EMA steps are:
//   step 2: theta_lie <- a theta_lie + (1 - a) theta_med  (S -> T)
//   step 4: theta_med <- a theta_med + (1 - a) theta_lie  (T -> S)

export type TrainingVariant = 'full' | 'baseline' | 'st' | 'ts' | 'no-prompt';

export interface VariantSwitches {
  /** Train f_lie with L_rec against the teacher's features in stage 1. */
  distill: boolean;
  /** Stage 2 step 2: the general encoder follows the medical encoder. */
  emaToGeneral: boolean;
  /** Stage 2 step 4: the medical encoder follows the general encoder. */
  emaToMedical: boolean;
  /** The model must be built with (true) or without the auto-prompt. */
  autoPrompt: boolean;
}

function switches(
  distill: boolean,
  emaToGeneral: boolean,
  emaToMedical: boolean,
  autoPrompt: boolean,
): VariantSwitches {
  return { distill, emaToGeneral, emaToMedical, autoPrompt };
}

/**
 * Switches of each variant:
 * - 'full': dual-stage distillation (L_rec, then mutual EMA) with the
 *   auto-prompt;
 * - 'baseline': no distillation, no EMA and no prompt (Table 2's first
 *   row ticks only the baseline);
 * - 'st' and 'ts': one-way EMA in stage 2 (only step 2, or only step 4),
 *   with stage 1's distillation and the prompt;
 * - 'no-prompt': the full dual-stage scheme without the auto-prompt.
 */
export const VARIANTS: Readonly<Record<TrainingVariant, VariantSwitches>> = {
  full: switches(true, true, true, true),
  baseline: switches(false, false, false, false),
  st: switches(true, true, false, true),
  ts: switches(true, false, true, true),
  'no-prompt': switches(true, true, true, false),
};

/** Returns the switches of `variant`, throwing on an unknown name. */
export function variantSwitches(variant: TrainingVariant): VariantSwitches {
  const switches = VARIANTS[variant];
  if (!switches) {
    throw new RangeError(
      `variantSwitches: unknown variant ${JSON.stringify(variant)}; ` +
        `expected one of ${Object.keys(VARIANTS).join(', ')}`,
    );
  }
  return switches;
}

/**
 * Model options that match a variant, to spread into rrlConfig or the
 * RrlMedSam constructor.
 *
 * @example
 * const options = variantModelOptions('no-prompt');
 * const model = new RrlMedSam({ numClasses, ...options });
 */
export function variantModelOptions(variant: TrainingVariant): {
  autoPrompt: boolean;
} {
  return { autoPrompt: variantSwitches(variant).autoPrompt };
}
