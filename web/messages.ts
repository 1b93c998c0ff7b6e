// Messages shown at the top of the page. Every failure the page catches
// ends up here as a visible box with a title, the specific reason and
// what to do next, and is also logged to the console. Each box carries a
// data-code attribute (such as "not-nifti") so tests can tell the cases
// apart without matching prose.

import { CheckpointError } from '../src/io/checkpoint-error.js';
import { NoAdapterError } from '../src/device.js';
import { NiftiError } from '../src/pipeline/nifti-types.js';
import { ConfigMismatchError } from '../src/pipeline/model-folder.js';

/** A failure the page explains itself, with a code for tests. */
export class PageError extends Error {
  override name = 'PageError';
  constructor(
    readonly code: string,
    readonly title: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

function messageBox(): HTMLElement {
  return document.getElementById('messages')!;
}

/** Adds a message box; returns it so a caller can remove it later. */
export function showMessage(
  kind: 'error' | 'info',
  code: string,
  title: string,
  text: string,
): HTMLElement {
  const box = document.createElement('div');
  box.className = `message ${kind}`;
  box.dataset.code = code;
  const heading = document.createElement('strong');
  heading.textContent = title;
  const body = document.createElement('p');
  body.textContent = text;
  box.append(heading, body);
  messageBox().append(box);
  return box;
}

/** Removes every message box except those whose code is in `keep`. */
export function clearMessages(keep: readonly string[] = []): void {
  for (const box of messageBox().querySelectorAll<HTMLElement>('.message')) {
    if (!keep.includes(box.dataset.code ?? '')) box.remove();
  }
}

/** Removes the message boxes whose code is `code`. */
export function clearMessage(code: string): void {
  for (const box of messageBox().querySelectorAll<HTMLElement>('.message')) {
    if (box.dataset.code === code) box.remove();
  }
}

/**
 * Turns any error into a PageError: a PageError as it is, and the
 * library's NIfTI, checkpoint and adapter errors with a code, and a title
 * that names the wrong input.
 */
export function describeError(error: unknown, context: string): PageError {
  if (error instanceof PageError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof NoAdapterError) {
    return new PageError('no-webgpu', 'WebGPU is not available', message);
  }
  if (error instanceof NiftiError) {
    return new PageError(
      'not-nifti',
      `${context}: not a NIfTI volume the page can read`,
      `${message}\nDrop a 3D scan saved as .nii or .nii.gz.`,
    );
  }
  if (error instanceof CheckpointError) {
    const otherConfig = error instanceof ConfigMismatchError;
    return new PageError(
      otherConfig ? 'model-config' : 'model-invalid',
      otherConfig
        ? `${context}: the weights belong to another model config`
        : `${context}: the model folder cannot be used`,
      message,
    );
  }
  return new PageError('failed', `${context} failed`, message);
}

/** Shows `error` as an error message and logs it; returns the PageError. */
export function reportError(error: unknown, context: string): PageError {
  const described = describeError(error, context);
  console.error(`${context}:`, error);
  showMessage('error', described.code, described.title, described.message);
  return described;
}
