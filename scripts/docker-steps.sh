#!/usr/bin/env bash
# Repeats the build stage of the Dockerfile without Docker, in a scratch directory:
# copy the package files and sources, `npm ci`, `npm run build`, `npm prune --omit=dev`,
# then check what the runtime image relies on (dist/cli.js runs, devDependencies are gone,
# the better-sqlite3 native addon loads).
#
# Usage: scripts/docker-steps.sh [WORKDIR]
#   WORKDIR defaults to a new temporary directory, removed afterwards unless KEEP=1.
# Needs network access to the npm registry (or a warm npm cache), and the Node major version the
# image is built on (the Dockerfile's FROM node:<major>-slim) first on PATH. Slow: minutes.
# The test suite runs it in CI (CI=true) or when RUN_DOCKER_STEPS=1 (test/unit/dockerfile.test.ts),
# on that Node version; .ci/run does so in its Node 24 run.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
image_major="$(sed -n 's/^FROM node:\([0-9][0-9]*\)-slim.*/\1/p' "$repo/Dockerfile" | head -n 1)"
node_version="$(node --version)"
node_major="${node_version#v}"
node_major="${node_major%%.*}"
if [ -z "$image_major" ] || [ "$node_major" != "$image_major" ]; then
  echo "docker-steps: the image builds on Node ${image_major:-?} (Dockerfile FROM node:${image_major:-?}-slim), but node on PATH is $node_version; put Node ${image_major:-?} first on PATH" >&2
  exit 3
fi
if [ "$#" -ge 1 ]; then
  work="$1"
  mkdir -p "$work"
else
  work="$(mktemp -d "${TMPDIR:-/tmp}/mass-al-bridge-docker-steps.XXXXXX")"
  if [ "${KEEP:-0}" != "1" ]; then trap 'rm -rf "$work"' EXIT; fi
fi

echo "docker-steps: building in $work"
# Same files as the Dockerfile's COPY lines of the build stage.
cp "$repo/package.json" "$repo/package-lock.json" "$repo/tsconfig.json" "$repo/tsconfig.build.json" "$work/"
cp -R "$repo/bin" "$repo/src" "$work/"
cd "$work"

# --- the Dockerfile's RUN steps, in order ---
npm ci
npm run build
npm prune --omit=dev
# --- end of the Dockerfile's RUN steps ---

test -f dist/cli.js || { echo "docker-steps: dist/cli.js missing after the build" >&2; exit 1; }
if [ -d node_modules/typescript ] || [ -d node_modules/tsx ]; then
  echo "docker-steps: devDependencies are still installed after npm prune --omit=dev" >&2
  exit 1
fi
node -e "const D=require('better-sqlite3'); const db=new D(':memory:'); if (db.prepare('select 1 as x').get().x!==1) process.exit(1); db.close()"
version="$(node dist/cli.js --version)"
echo "docker-steps: OK (mass-al-bridge $version)"
