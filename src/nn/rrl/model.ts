// RrlMedSam: the two branches of RRL-MedSAM and the distillation head.
//
// - general branch: encoder f_lie (`general_encoder`) and segmentation
//   decoder (`general_decoder`), giving the coarse mask yhat_g;
// - medical branch: encoder f_med (`medical_encoder`) shared by the
//   registration decoder (`registration_decoder`, giving the flow phi) and
//   the auto-prompting decoder (`medical_decoder`, giving yhat_m, the
//   final segmentation);
// - `projection` P, from f_lie's bottleneck to the teacher's width.
//
// Layout: images [N, inChannels, D, H, W] with D, H, W multiples of 16.

import { noGrad } from '../../autograd/node.js';
import { formatShape, tidy, type Tensor } from '../../tensor.js';
import { Random } from '../../random.js';
import { Module } from '../module.js';
import { AutoPromptDecoder } from './auto-prompt.js';
import {
  rrlConfig,
  type RrlConfigOptions,
  type RrlModelConfig,
} from './config.js';
import { checkVolumeInput, Encoder3d, type FeaturePyramid } from './encoder.js';
import { ProjectionHead } from './projection.js';
import { RegistrationDecoder } from './registration-decoder.js';
import { SegmentationDecoder } from './segmentation-decoder.js';
import { modelSummary, type ModelSummary } from './summary.js';

/** Outputs of the general branch on one image. */
export interface GeneralOutput {
  pyramid: FeaturePyramid;
  /** yhat_g: class probabilities [N, K + 1, D, H, W]. */
  probs: Tensor;
}

/** Outputs of the registration path of the medical branch. */
export interface RegistrationOutput {
  /** phi: the flow [N, 3, D, H, W] in voxels that warps atlas to target. */
  flow: Tensor;
  /** f_med's pyramid of the target, for the medical decoder. */
  targetPyramid: FeaturePyramid;
}

/** Everything the model predicts for an atlas and a target. */
export interface RrlOutput {
  flow: Tensor;
  generalProbs: Tensor;
  /** yhat_m, the final segmentation probabilities. */
  medicalProbs: Tensor;
}

/** Returns a handle on t's values that records no gradient. */
export function detach(t: Tensor): Tensor {
  return t.share();
}

export class RrlMedSam extends Module {
  readonly config: RrlModelConfig;
  readonly generalEncoder: Encoder3d;
  readonly generalDecoder: SegmentationDecoder;
  readonly medicalEncoder: Encoder3d;
  readonly registrationDecoder: RegistrationDecoder;
  readonly medicalDecoder: AutoPromptDecoder;
  readonly projection: ProjectionHead;

  /**
   * Builds the networks of a config (or of rrlConfig(options)). Weights
   * are drawn from one generator seeded with config.seed, module by module
   * in the order above, so a seed fixes every initial value.
   */
  constructor(options: RrlModelConfig | RrlConfigOptions) {
    super();
    const config = rrlConfig(options);
    this.config = config;
    const random = new Random(config.seed);
    this.generalEncoder = this.module(
      'general_encoder',
      new Encoder3d(config, random),
    );
    this.generalDecoder = this.module(
      'general_decoder',
      new SegmentationDecoder(config, random),
    );
    this.medicalEncoder = this.module(
      'medical_encoder',
      new Encoder3d(config, random),
    );
    this.registrationDecoder = this.module(
      'registration_decoder',
      new RegistrationDecoder(config, random),
    );
    this.medicalDecoder = this.module(
      'medical_decoder',
      new AutoPromptDecoder(config, random),
    );
    const bottleneck = config.encoderChannels[4];
    this.projection = this.module(
      'projection',
      new ProjectionHead(bottleneck, config.teacherChannels, random),
    );
  }

  /** Parameters the general optimiser trains: f_lie, its decoder and P. */
  generalParameters(): Tensor[] {
    return [
      ...this.generalEncoder.parameters(),
      ...this.generalDecoder.parameters(),
      ...this.projection.parameters(),
    ];
  }

  /** Parameters the medical optimiser trains: f_med and its decoders. */
  medicalParameters(): Tensor[] {
    return [
      ...this.medicalEncoder.parameters(),
      ...this.registrationDecoder.parameters(),
      ...this.medicalDecoder.parameters(),
    ];
  }

  /** Runs the general branch on `target`: f_lie's pyramid and yhat_g. */
  segmentGeneral(target: Tensor): GeneralOutput {
    return tidy(() => {
      const pyramid = this.generalEncoder.forward(target);
      return { pyramid, probs: this.generalDecoder.forward(pyramid) };
    });
  }

  /**
   * Returns yhat_g as the medical decoder's prompt, or null when
   * autoPrompt is off. With detachPrompt (the default) it is computed
   * without recording gradients, which also saves the backward graph.
   */
  promptMask(target: Tensor): Tensor | null {
    if (!this.config.autoPrompt) return null;
    const run = () => tidy(() => this.segmentGeneral(target).probs);
    return this.config.detachPrompt ? noGrad(run) : run();
  }

  /** Registers the atlas onto the target with f_med and the decoder. */
  register(atlas: Tensor, target: Tensor): RegistrationOutput {
    const channels = this.config.inChannels;
    checkVolumeInput('RrlMedSam.register', 'atlas', atlas, channels);
    checkVolumeInput('RrlMedSam.register', 'target', target, channels);
    if (!atlas.shape.every((size, axis) => size === target.shape[axis])) {
      throw new RangeError(
        `RrlMedSam.register: atlas ${formatShape(atlas.shape)} and target ` +
          `${formatShape(target.shape)} must have the same shape`,
      );
    }
    return tidy(() => {
      const atlasPyramid = this.medicalEncoder.forward(atlas);
      const targetPyramid = this.medicalEncoder.forward(target);
      const flow = this.registrationDecoder.forward(atlasPyramid, targetPyramid, {
        atlas,
        target,
      });
      return { flow, targetPyramid };
    });
  }

  /** yhat_m from f_med's target pyramid and the prompt mask (or null). */
  segmentMedical(targetPyramid: FeaturePyramid, mask: Tensor | null): Tensor {
    return this.medicalDecoder.forward(targetPyramid, mask);
  }

  /** P(f_lie(x)): the bottleneck features projected to the teacher width. */
  project(pyramid: FeaturePyramid): Tensor {
    return this.projection.forward(pyramid[4]);
  }

  /** Predicts the flow and both segmentations of `target`. */
  forward(atlas: Tensor, target: Tensor): RrlOutput {
    return tidy(() => {
      const general = this.segmentGeneral(target);
      const { flow, targetPyramid } = this.register(atlas, target);
      const mask = this.config.autoPrompt ? general.probs : null;
      const medicalProbs = this.segmentMedical(targetPyramid, mask);
      return { flow, generalProbs: general.probs, medicalProbs };
    });
  }

  /** Parameter counts per module (see summary.ts). */
  summary(): ModelSummary {
    return modelSummary(this);
  }

  /** Prints the summary table through `write` (default console.log). */
  printSummary(write: (line: string) => void = console.log): ModelSummary {
    const summary = this.summary();
    write(summary.table);
    return summary;
  }
}
