// vitest globalSetup of the browser project: writes dist/browser/ with the
// current sources, so that bundle-run.test.ts loads the bundle as built,
// not a stale one. Runs in Node before the browser starts.

import { writeBrowserBundle } from '../scripts/build-web.js';

export default async function setup(): Promise<void> {
  await writeBrowserBundle();
}
