#!/usr/bin/env bash
# One-command setup: installs the npm dependencies, makes a WebGPU adapter
# available (installing the lavapipe driver on Debian/Ubuntu when no adapter
# works and this runs as root), checks the device, then runs the main job:
# `rrl-medsam demo` on the embedded IXI scans. Arguments go to demo, so
# `bash scripts/setup.sh --quick` runs its few-minute version.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null 2>&1; then
  echo "setup: Node.js 20 or newer is required (https://nodejs.org or your package manager)." >&2
  exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "setup: Node.js $(node --version) is too old; version 20 or newer is required." >&2
  exit 1
fi

npm ci --no-audit --no-fund
bash scripts/setup-gpu.sh
npm run --silent selfcheck
npm run --silent demo -- "$@"
