// The one error class for reading and writing checkpoint files.

/**
 * Invalid, truncated or unsupported checkpoint data, or a state dict that
 * does not match the model. The message starts with the function that failed
 * and names the file part, key or value at fault.
 */
export class CheckpointError extends Error {
  override name = 'CheckpointError';
}
