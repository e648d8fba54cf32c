#!/usr/bin/env bash
# Start a Nexus server with API-key authentication on a fresh data directory,
# create an admin key, and write it where `source` can pick it up:
#
#   ./scripts/init-nexus-with-auth.sh
#   source .nexus-admin-env          # NEXUS_URL and NEXUS_API_KEY
#   ./examples/cli/workspace_session_demo.sh
#
# Settings (environment):
#   NEXUS_DATA_DIR   data directory to create        (default ./nexus-data-auth)
#   NEXUS_PORT       TCP port                        (default 8080)
#   NEXUS_HOST       address to listen on            (default 127.0.0.1)
#   NEXUS_ENV_FILE   where to write the credentials  (default ./.nexus-admin-env)
#   NEXUS_LOG_FILE   the server's output             (default ./.nexus-server.log)
#
# The server runs in the background (`nexus serve`); every TCP request needs
# `Authorization: Bearer <key>`. The admin key is made through the local CLI,
# which reaches the data directory through the server's local socket
# (<data dir>/nexus.sock, mode 0600: this user only). The key's secret is
# written to the env file (mode 0600) and nowhere else; the data directory
# keeps only its hash. Stop the server with `kill <pid>` (printed at the end):
# it finishes requests in flight, commits and releases the data directory.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
nexus="${NEXUS_BIN:-$here/../bin/nexus}"
data_dir="${NEXUS_DATA_DIR:-./nexus-data-auth}"
port="${NEXUS_PORT:-8080}"
host="${NEXUS_HOST:-127.0.0.1}"
env_file="${NEXUS_ENV_FILE:-./.nexus-admin-env}"
log_file="${NEXUS_LOG_FILE:-./.nexus-server.log}"

say() { printf '%s\n' "$*"; }
die() { printf 'init-nexus-with-auth: %s\n' "$*" >&2; exit 1; }

[[ -x "$nexus" ]] || die "cannot run $nexus (build first: scripts/setup.sh or npm run build; or set NEXUS_BIN)"
[[ "$port" =~ ^[0-9]+$ ]] && (( port > 0 && port < 65536 )) || die "NEXUS_PORT must be a TCP port number (got '$port')"

# A fresh data directory: never take over one that holds data.
if [[ -e "$data_dir" ]]; then
  [[ -d "$data_dir" ]] || die "$data_dir exists and is not a directory"
  [[ -z "$(ls -A "$data_dir")" ]] || die "$data_dir already holds data; remove it or set NEXUS_DATA_DIR to a new directory"
fi
mkdir -p "$data_dir"
chmod 700 "$data_dir"
data_dir=$(cd "$data_dir" && pwd)

# 1. The server, in the background, with its output in the log file.
: >"$log_file"
nohup "$nexus" serve --data-dir "$data_dir" --host "$host" --port "$port" >>"$log_file" 2>&1 </dev/null &
pid=$!

stop_server() {
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

# It prints "nexus serving <dir> at <url> and <socket>" once it listens on both.
url=
for _ in $(seq 200); do
  if ! kill -0 "$pid" 2>/dev/null; then
    cat "$log_file" >&2
    die "the server exited before it was ready (is port $port free? set NEXUS_PORT)"
  fi
  url=$(sed -n 's/^nexus serving .* at \(http:[^ ]*\).*$/\1/p' "$log_file" | head -n 1)
  [[ -n "$url" ]] && break
  sleep 0.1
done
if [[ -z "$url" ]]; then
  stop_server
  cat "$log_file" >&2
  die "the server did not start within 20 s"
fi

# 2. The admin key, through the local socket (--data-dir: never a URL from the environment).
if ! key=$(NEXUS_SESSION= "$nexus" key create --subject user:admin --admin --data-dir "$data_dir"); then
  stop_server
  die "could not create the admin key"
fi
[[ "$key" =~ ^nx_([0-9a-f]{16})_[0-9a-f]{48}$ ]] || { stop_server; die "unexpected key format from 'nexus key create'"; }
key_id=${BASH_REMATCH[1]}

# 3. Check that TCP really asks for a key: refused without one, served with it.
if ! NEXUS_CHECK_URL="$url" NEXUS_CHECK_KEY="$key" node --input-type=module -e '
  const url = `${process.env.NEXUS_CHECK_URL}/api/v1/files/stat?path=/`;
  const anon = await fetch(url);
  const admin = await fetch(url, { headers: { authorization: `Bearer ${process.env.NEXUS_CHECK_KEY}` } });
  if (anon.status !== 401 || admin.status !== 200) {
    console.error(`without a key: HTTP ${anon.status} (want 401); with the admin key: HTTP ${admin.status} (want 200)`);
    process.exit(1);
  }'; then
  stop_server
  die "the server does not authenticate as expected"
fi

# 4. The credentials, for `source` (readable by this user only).
umask 077
cat >"$env_file" <<EOF
# Nexus admin credentials (key id $key_id), written by init-nexus-with-auth.sh.
# Server pid $pid serving $data_dir; stop it with: kill $pid
export NEXUS_URL=$url NEXUS_API_KEY=$key
EOF
chmod 600 "$env_file"

say "Nexus is serving $data_dir at $url with API-key authentication (pid $pid)."
say "Admin key $key_id (subject user:admin) is in $env_file:"
say "  source $env_file"
say "  ./examples/cli/workspace_session_demo.sh"
say "Server log: $log_file"
say "To stop the server: kill $pid"
