# Shared helpers for scripts/run and scripts/test. Source it; do not run it.

# Debian packages each stage needs. Keep docs/architecture.md in step with this list.
DP_BUILD_PACKAGES=(
  g++ cmake ninja-build ccache pkg-config git
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libpq-dev libsqlite3-dev libhiredis-dev libyaml-cpp-dev
  libcli11-dev prometheus-cpp-dev libsodium-dev libjwt-dev
  # Time zones of cron triggers: Howard Hinnant's date library over the system tzdata.
  libhowardhinnant-date-dev tzdata
  # The vector memory's HNSW index (header-only; src/memory/vector_index.cpp).
  libhnswlib-dev
  # Not for building: the sandbox that command agents run in (bubblewrap).
  bubblewrap
)
DP_TEST_PACKAGES=(
  libgtest-dev libgmock-dev postgresql redis-server redis-tools sqlite3 curl procps
)
# The dashboard (web/) builds with Node and npm (installed from Debian only when no `node` is
# on the PATH); its browser tests (tests/e2e) drive Debian's Chromium.
DP_WEB_PACKAGES=(nodejs npm)
DP_E2E_PACKAGES=(chromium)
# libFuzzer targets (tests/fuzz) build with clang.
DP_FUZZ_PACKAGES=(clang)

dp_log() { printf '==> %s\n' "$*" >&2; }
dp_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Installs the packages that are missing, quietly when none are.
dp_ensure_packages() {
  local missing=() p
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$p")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || dp_die "need root (or sudo) to install: ${missing[*]}"
    sudo=(sudo)
  fi
  dp_log "installing ${missing[*]}"
  # Services installed here (postgresql, redis) must not be started by the package scripts.
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod +x "$policy"
    created_policy=1
  fi
  local rc=0
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || rc=$?
  if [ $rc -eq 0 ]; then
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null || rc=$?
  fi
  [ $created_policy -eq 1 ] && "${sudo[@]}" rm -f "$policy"
  [ $rc -eq 0 ] || dp_die "apt-get failed installing: ${missing[*]}"
}

# Prints a TCP port on 127.0.0.1 that nothing listens on, below the kernel's ephemeral range
# when there is room: a port inside that range can be taken at any moment as the local end of
# an outgoing connection, and a server started on it then fails to bind.
dp_free_port() {
  local p i lo=20000 hi=50000 eph
  eph=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true)
  if [[ "$eph" =~ ^[0-9]+$ ]] && (( eph > lo + 1000 )); then hi=$eph; fi
  for i in $(seq 1 200); do
    p=$(( (RANDOM * 32768 + RANDOM) % (hi - lo) + lo ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  dp_die "no free port found"
}

dp_jobs() { nproc 2>/dev/null || echo 2; }

# Builds the dashboard into web/dist, quietly: `npm ci` only when web/node_modules is missing or
# package-lock.json changed since the last install, `npm run build` only when a source changed
# since the last build. Output is shown only when a step fails.
dp_build_web() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    dp_ensure_packages "${DP_WEB_PACKAGES[@]}"
  fi
  local lock_sum src_sum log
  lock_sum=$(sha256sum web/package-lock.json | cut -d' ' -f1)
  if [ ! -d web/node_modules ] || [ "$(cat web/node_modules/.devplane-lock 2>/dev/null)" != "$lock_sum" ]; then
    dp_log "installing the dashboard's packages (npm ci in web/)"
    log=$(mktemp)
    if ! (cd web && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) >"$log" 2>&1; then
      cat "$log" >&2
      rm -f "$log"
      dp_die "npm ci failed in web/"
    fi
    rm -f "$log"
    echo "$lock_sum" >web/node_modules/.devplane-lock
  fi
  src_sum=$( (cd web && find src public astro.config.mjs tsconfig.json package-lock.json -type f -print0 |
    sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1)
  if [ -f web/dist/index.html ] && [ "$(cat web/dist/.devplane-src 2>/dev/null)" = "$src_sum" ]; then
    return 0
  fi
  dp_log "building the dashboard (npm run build in web/)"
  log=$(mktemp)
  if ! (cd web && npm run build) >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    dp_die "the dashboard build failed (see above)"
  fi
  rm -f "$log"
  echo "$src_sum" >web/dist/.devplane-src
}
