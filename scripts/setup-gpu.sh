#!/usr/bin/env bash
# Make a WebGPU adapter available to Node through Dawn.
#
# On a machine without a GPU, Dawn runs on Mesa's lavapipe Vulkan driver. The
# Mesa in Debian bookworm main (22.3) lacks features Dawn requires, so on
# Debian bookworm the driver comes from bookworm-backports (Mesa 25). On other
# systems this script prints what to install and exits non-zero when no
# adapter works.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

has_adapter() {
  node "$here/probe-adapter.mjs" >/dev/null 2>&1
}

if has_adapter; then
  echo "setup-gpu: a WebGPU adapter already works: $(node "$here/probe-adapter.mjs" 2>/dev/null)"
  exit 0
fi

codename=""
if [ -r /etc/os-release ]; then
  # shellcheck disable=SC1091
  . /etc/os-release
  codename=${VERSION_CODENAME:-}
  distro=${ID:-}
fi

if [ "$(id -u)" != 0 ]; then
  echo "setup-gpu: no WebGPU adapter works and this script is not running as root." >&2
  echo "  On Debian bookworm run it again as root: sudo npm run setup:gpu" >&2
  echo "  On Ubuntu 24.04 or newer: sudo apt-get install -y libvulkan1 mesa-vulkan-drivers" >&2
  echo "  Elsewhere install your GPU's Vulkan, Metal or D3D12 driver." >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
if [ "${distro:-}" = debian ] && [ "$codename" = bookworm ]; then
  list=/etc/apt/sources.list.d/bookworm-backports.sources
  if [ ! -e "$list" ]; then
    # Same mirror and keyring as the machine's existing Debian entry.
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$uri" ] || uri=http://deb.debian.org/debian
    cat >"$list" <<SRC
Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  apt-get update -qq
  apt-get install -y -qq libvulkan1
  apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers
elif command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq libvulkan1 mesa-vulkan-drivers
else
  echo "setup-gpu: no WebGPU adapter works and this is not a Debian or Ubuntu system." >&2
  echo "  Install a Vulkan driver (Mesa's lavapipe for CPU-only machines), then retry." >&2
  exit 1
fi

if has_adapter; then
  echo "setup-gpu: adapter ready: $(node "$here/probe-adapter.mjs")"
else
  echo "setup-gpu: the driver is installed but Dawn still finds no adapter:" >&2
  node "$here/probe-adapter.mjs" >&2 || true
  exit 1
fi
