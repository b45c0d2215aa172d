# Shared helpers for scripts/run and scripts/test. Source it; do not run it.

# Debian packages each stage needs. Keep docs/architecture.md in step with this list.
DP_BUILD_PACKAGES=(
  g++ cmake ninja-build ccache pkg-config git
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libpq-dev libsqlite3-dev libhiredis-dev libyaml-cpp-dev
  libcli11-dev prometheus-cpp-dev libsodium-dev libjwt-dev
)
DP_TEST_PACKAGES=(
  libgtest-dev libgmock-dev postgresql redis-server sqlite3 curl procps
)

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

# Prints a TCP port on 127.0.0.1 that nothing listens on.
dp_free_port() {
  local p i
  for i in $(seq 1 200); do
    p=$(( (RANDOM * 32768 + RANDOM) % 30000 + 20000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  dp_die "no free port found"
}

dp_jobs() { nproc 2>/dev/null || echo 2; }
