import { playwright } from '@vitest/browser-playwright';
import { defineConfig } from 'vitest/config';

// Two projects run the suites: `node` runs every test file on Dawn, and
// `browser` runs the kernel, autograd, optimiser and nn suites again in
// headless Chromium, so that one source is checked on both WebGPU stacks.
//
// Every file creates its own device, and each Dawn instance starts its own
// lavapipe worker threads. On a 2-core machine, running files in parallel
// only makes them contend. So files run one at a time, each in a forked
// worker in Node or in an iframe of one Chromium page. Vitest runs the
// projects one after the other, in increasing groupOrder: Node first.

// Files of the browser project. A new test file runs in Node only until it
// is listed here. The others stay Node-only:
// - nifti, manifest, preview, checkpoint, structures, preprocess,
//   affine-align, teacher and sam read scans, .pth files or temporary
//   folders through node:fs;
// - nifti-fuzz takes its case count and seed from process.env;
// - browser-bundle runs esbuild, which needs Node;
// - train (about 2 minutes on SwiftShader here) and leak (2000 training
//   steps) run the same kernels as the listed files, so in the browser
//   they would mostly add time. The bookkeeping that leak checks is plain
//   JavaScript, the same in both environments.
const BROWSER_TESTS = [
  'test/runtime.test.ts',
  'test/adapter-request.test.ts',
  'test/device-errors.test.ts',
  'test/elementwise.test.ts',
  'test/layout.test.ts',
  'test/reduce.test.ts',
  'test/softmax.test.ts',
  'test/matmul.test.ts',
  'test/conv3d.test.ts',
  'test/warp.test.ts',
  'test/losses.test.ts',
  'test/norm.test.ts',
  'test/upsample.test.ts',
  'test/pool.test.ts',
  'test/nn.test.ts',
  'test/optim.test.ts',
  'test/limits.test.ts',
  'test/augment.test.ts',
  'test/phantom.test.ts',
  'test/rrl-model.test.ts',
  'test/bundle-run.test.ts',
];

// Chromium 156 (Debian's `chromium` package) offers WebGPU on a machine
// without a GPU only through its bundled SwiftShader. It rejects Mesa's
// lavapipe because lavapipe lacks external-semaphore support. The flags,
// as measured with Chromium 156 and playwright-core 1.65:
// - --enable-unsafe-webgpu is required: without it navigator.gpu exists but
//   requestAdapter() returns null;
// - --use-webgpu-adapter=swiftshader requests SwiftShader by name, meant
//   to give machines with a GPU the same adapter as CI (untested, since
//   this machine has no GPU);
// - --no-sandbox lets Chromium start as root in containers and CI, where
//   its setuid and user-namespace sandboxes are unavailable (playwright
//   1.65 also adds it unless `chromiumSandbox` is set; stated here so that
//   the flag list is complete).
// --use-angle=swiftshader and --enable-unsafe-swiftshader are not needed for
// compute; the former added about 0.75 s to the first requestAdapter().
const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
];

// The system Chromium: playwright-core downloads no browser when given an
// executable path (`.ci/run` installs the `chromium` package).
const CHROMIUM_PATH = process.env.RRL_MEDSAM_CHROMIUM ?? '/usr/bin/chromium';

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
    maxWorkers: 1,
    projects: [
      {
        extends: true,
        test: {
          name: 'node',
          include: ['test/**/*.test.ts'],
          pool: 'forks',
          sequence: { groupOrder: 1 },
        },
      },
      {
        extends: true,
        test: {
          name: 'browser',
          include: BROWSER_TESTS,
          sequence: { groupOrder: 2 },
          // Builds dist/browser/ for bundle-run.test.ts.
          globalSetup: ['test/browser-bundle-setup.ts'],
          browser: {
            enabled: true,
            headless: true,
            // Serve the test pages on loopback only.
            api: { host: '127.0.0.1' },
            provider: playwright({
              launchOptions: {
                executablePath: CHROMIUM_PATH,
                args: CHROMIUM_FLAGS,
              },
            }),
            instances: [{ browser: 'chromium' }],
            // The suites test compute kernels, not pages: a screenshot of a
            // failure shows an empty page and would land in test/.
            screenshotFailures: false,
          },
        },
      },
    ],
  },
});
