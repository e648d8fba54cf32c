#!/usr/bin/env bash
# Sets up Nexus on a Debian machine with Node 20: OS packages, npm dependencies
# from the lock file (native modules built and checked), and the TypeScript build.
# Safe to run twice; fails loudly on the first thing that does not work.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }
die() { printf 'setup: FAILED: %s\n' "$*" >&2; exit 1; }

major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null) || die "node is not installed (Node 20 is required)"
[ "$major" = 20 ] || die "Node 20 is required (found $(node --version)); better-sqlite3 12 and fuse-native are built for it"

# libfuse2: fuse-native's libfuse 2.9 binding; libfuse-dev: its headers, to build
# the patched binding; fuse3: fusermount (Debian's fuse and fuse3 conflict; fuse3
# provides what fuse did). build-essential/python3: node-gyp.
pkgs=(libfuse2 libfuse-dev fuse3 build-essential python3 pkg-config git rsync)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing OS packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq || die "apt-get update failed"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
fi

if [ ! -e /dev/fuse ]; then
  say "WARNING: /dev/fuse is missing: 'nexus mount' and the mount tests cannot run here (load the fuse module or run the container with --device /dev/fuse)"
fi

# npm ci only when the lock file changed since the last install (keeps a rerun fast).
stamp=node_modules/.nexus-installed
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ] || [ patches -nt "$stamp" ]; then
  say "installing npm dependencies from package-lock.json"
  npm ci --no-audit --no-fund || die "npm ci failed"
  touch "$stamp"
else
  # Still verify the native modules load (catches a Node upgrade since the install).
  node scripts/postinstall.mjs || die "native modules are broken; remove node_modules and rerun"
fi

say "building"
npm run --silent build || die "TypeScript build failed"
say "ready: bin/nexus --help"
