#!/usr/bin/env bash
# `npm run test:compat`: checks the packed library against the oldest majors its peer ranges
# promise, NestJS 11 (CommonJS packages, imported from ESM) and ioredis 5.
#
# Builds and packs the library, installs the tarball with those versions into a fresh ESM app in a
# temporary directory, compiles test/compat/app.ts there with this repo's TypeScript (which also
# type-checks the shipped .d.ts files against them) and runs it against a private redis-server on
# a free port. Any failure exits non-zero; the temporary directory and the server are removed.
#
# Then two more apps from the same tarball run a consumer's Jest test of an `@Lock` provider
# (test/compat/jest/jobs.spec.ts) with their framework's default Jest setup:
# - a NestJS 11 CommonJS app: Nest's default Jest config, ts-jest and Jest 29 on CommonJS (the
#   package's CommonJS build), plus `tsc` of TypeScript 5.7 with `module: node16` on the test
#   (TS1479 with an ES module-only package);
# - a NestJS 12 ES module app: Jest 30 in ESM mode with ts-jest's ESM transform.
# COMPAT_JEST_APPS=0 skips them.
#
# Other versions: COMPAT_NEST, COMPAT_IOREDIS, COMPAT_RXJS and COMPAT_REFLECT_METADATA take npm
# version ranges, e.g. the newest majors:
#   COMPAT_NEST='^12' COMPAT_IOREDIS='^6' npm run test:compat
# or the floors of the peer ranges:
#   COMPAT_NEST=11.0.0 COMPAT_IOREDIS=5.2.5 COMPAT_REFLECT_METADATA=0.1.13 npm run test:compat
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/test/compat"
NEST="${COMPAT_NEST:-^11}"
IOREDIS="${COMPAT_IOREDIS:-^5}"
RXJS="${COMPAT_RXJS:-^7}"
REFLECT_METADATA="${COMPAT_REFLECT_METADATA:-latest}"
JEST_APPS="${COMPAT_JEST_APPS:-1}"
NPM_FLAGS=(--no-audit --no-fund --prefer-offline --loglevel=error)

log() { printf 'compat: %s\n' "$*"; }
fail() {
  printf 'compat: FAIL: %s\n' "$*" >&2
  exit 1
}

command -v redis-server >/dev/null || fail "redis-server is not on PATH"
command -v redis-cli >/dev/null || fail "redis-cli is not on PATH"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/nestjs-redis-lock-compat.XXXXXX")"
REDIS_PID=""
JEST_INSTALLS=()
cleanup() {
  for pid in "${JEST_INSTALLS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ -n "$REDIS_PID" ]]; then
    kill "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "building the library"
(cd "$ROOT" && npm run --silent build)

log "packing"
TARBALL="$WORK/$(cd "$ROOT" && npm pack --silent --pack-destination "$WORK" | tail -n 1)"
CONTENTS="$(tar -tzf "$TARBALL")"
for required in package/README.md package/LICENSE package/dist/index.js package/dist/index.d.ts \
  package/dist/cjs/index.js package/dist/cjs/index.d.ts package/dist/cjs/package.json; do
  grep -qx "$required" <<<"$CONTENTS" || fail "the package lacks ${required#package/}"
done
if grep -v -e '^package/dist/' -e '^package/README.md$' -e '^package/package.json$' -e '^package/LICENSE$' \
  <<<"$CONTENTS"; then
  fail "the package ships the files above, which are not dist/, README.md, LICENSE or package.json"
fi
# Source maps point at the sources; they must not carry them (inlineSources doubled the package).
if tar -xzOf "$TARBALL" --wildcards 'package/dist/*.map' | grep -q '"sourcesContent"'; then
  fail "the source maps inline their sources"
fi

# The Jest apps install in the background while the fixture app installs and runs.
if [[ "$JEST_APPS" == 1 ]]; then
  log "installing the Jest apps (NestJS 11 CommonJS, NestJS 12 ES module) in the background"
  for kind in cjs esm; do
    mkdir -p "$WORK/jest-$kind/src"
    cp "$HERE/jest/$kind-package.json" "$WORK/jest-$kind/package.json"
    cp "$HERE/jest/$kind-tsconfig.json" "$WORK/jest-$kind/tsconfig.json"
    cp "$HERE/jest/jobs.spec.ts" "$WORK/jest-$kind/src/"
  done
  cp "$HERE/jest/cjs-tsconfig.node16.json" "$WORK/jest-cjs/tsconfig.node16.json"
  (cd "$WORK/jest-cjs" && npm install "${NPM_FLAGS[@]}" "$TARBALL" \
    @nestjs/common@^11 @nestjs/core@^11 @nestjs/testing@^11 ioredis@^5 rxjs@^7 reflect-metadata \
    jest@^29 ts-jest@^29 @types/jest@^29 @types/node@^20 typescript@~5.7 \
    >"$WORK/jest-cjs.install.log" 2>&1) &
  JEST_INSTALLS+=($!)
  (cd "$WORK/jest-esm" && npm install "${NPM_FLAGS[@]}" "$TARBALL" \
    @nestjs/common@^12 @nestjs/core@^12 @nestjs/testing@^12 ioredis@^6 rxjs@^7 reflect-metadata \
    jest@^30 ts-jest@^29 @types/jest@^30 @types/node@^20 typescript@~6.0 \
    >"$WORK/jest-esm.install.log" 2>&1) &
  JEST_INSTALLS+=($!)
fi

log "installing it with @nestjs/*@$NEST, ioredis@$IOREDIS, rxjs@$RXJS, reflect-metadata@$REFLECT_METADATA"
mkdir "$WORK/app"
printf '{ "name": "compat-consumer", "private": true, "type": "module" }\n' >"$WORK/app/package.json"
(cd "$WORK/app" && npm install "${NPM_FLAGS[@]}" "$TARBALL" \
  "@nestjs/common@$NEST" "@nestjs/core@$NEST" "@nestjs/platform-express@$NEST" \
  "ioredis@$IOREDIS" "rxjs@$RXJS" "reflect-metadata@$REFLECT_METADATA" "@types/node@^20" >/dev/null)

log "compiling the fixture app"
cp "$HERE/app.ts" "$HERE/tsconfig.json" "$WORK/app/"
"$ROOT/node_modules/.bin/tsc" -p "$WORK/app/tsconfig.json" ||
  fail "the fixture app does not compile against the installed versions"

# A private redis-server on a free port, never the shared one on 6379. A port can be taken
# between choosing and binding it, so try a few; INFO's process_id proves the answer is ours.
mkdir "$WORK/redis"
for _attempt in 1 2 3 4 5; do
  PORT="$(node -e "const s = require('net').createServer().listen(0, '127.0.0.1', () => {
    console.log(s.address().port); s.close(); });")"
  redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK/redis" \
    >"$WORK/redis.log" 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 100); do
    kill -0 "$REDIS_PID" 2>/dev/null || break
    INFO="$(redis-cli -h 127.0.0.1 -p "$PORT" info server 2>/dev/null || true)"
    [[ "$INFO" == *"process_id:$REDIS_PID"[!0-9]* ]] && break 2
    sleep 0.05
  done
  kill "$REDIS_PID" 2>/dev/null || true
  wait "$REDIS_PID" 2>/dev/null || true
  REDIS_PID=""
done
[[ -n "$REDIS_PID" ]] || fail "could not start redis-server: $(cat "$WORK/redis.log")"
log "redis-server $(redis-server --version | grep -o 'v=[^ ]*') on port $PORT"

log "running the fixture app"
(cd "$WORK/app" && REDIS_URL="redis://127.0.0.1:$PORT" timeout 60 node out/app.js) ||
  fail "the fixture app failed (exit $?)"

if [[ "$JEST_APPS" == 1 ]]; then
  for index in 0 1; do
    kind=(cjs esm)
    wait "${JEST_INSTALLS[$index]}" ||
      fail "installing the ${kind[$index]} Jest app failed: $(cat "$WORK/jest-${kind[$index]}.install.log")"
  done
  log "NestJS 11 CommonJS app: tsc $(cd "$WORK/jest-cjs" && npx tsc --version) with module node16"
  (cd "$WORK/jest-cjs" && npx tsc -p tsconfig.node16.json) ||
    fail "the CommonJS app's test does not type-check with module node16"
  log "NestJS 11 CommonJS app: its Jest test (Nest's default config, ts-jest, CommonJS)"
  (cd "$WORK/jest-cjs" && REDIS_URL="redis://127.0.0.1:$PORT" timeout 120 npm test --silent) ||
    fail "the CommonJS app's Jest test failed"
  log "NestJS 12 ES module app: its Jest test (Jest 30 ESM, ts-jest)"
  (cd "$WORK/jest-esm" && REDIS_URL="redis://127.0.0.1:$PORT" timeout 120 npm test --silent) ||
    fail "the ES module app's Jest test failed"
fi
log "passed in ${SECONDS}s"
