#!/usr/bin/env bash
# The seed document's CLI demo: workspaces, snapshots and agent sessions
# against a Nexus server, with an admin key.
#
#   ./scripts/init-nexus-with-auth.sh
#   source .nexus-admin-env            # NEXUS_URL, NEXUS_API_KEY
#   ./examples/cli/workspace_session_demo.sh
#
# Creates /workspace/acme-corp (or, when that exists already, a fresh
# /workspace/acme-corp-<timestamp>), snapshots it as daily-backup, breaks
# its data, restores it, then runs an agent session that writes in it and
# shows what the session did. Any failing step stops the demo (exit 1).
set -euo pipefail

: "${NEXUS_URL:?set NEXUS_URL and NEXUS_API_KEY first (source .nexus-admin-env)}"
: "${NEXUS_API_KEY:?set NEXUS_API_KEY first (source .nexus-admin-env)}"
# The commands talk to the server, not to a local data directory.
unset NEXUS_DATA_DIR NEXUS_SESSION

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ -n "${NEXUS_BIN:-}" ]]; then nexus_bin=$NEXUS_BIN
elif [[ -x "$here/../../bin/nexus" ]]; then nexus_bin="$here/../../bin/nexus"
else nexus_bin=$(command -v nexus) || { echo "workspace_session_demo: no nexus command (build the repository, or set NEXUS_BIN)" >&2; exit 1; }
fi
nexus() { "$nexus_bin" "$@"; }

step() { printf '\n== %s\n' "$*"; }
fail() { echo "workspace_session_demo: $*" >&2; exit 1; }

ws=/workspace/acme-corp
if nexus stat "$ws" >/dev/null 2>&1; then
  ws="/workspace/acme-corp-$(date +%Y%m%d-%H%M%S)-$$"
  echo "(/workspace/acme-corp exists already: this run uses $ws)"
fi

step "Create workspace"
nexus workspace create "$ws" --metadata '{"tenant_id": "acme-123", "plan": "enterprise"}'

step "List workspaces"
nexus workspace list

step "Write to the workspace"
printf '{"records": 1000}' | nexus write "$ws/data.json"

step "Create snapshot"
snapshot_id=$(nexus workspace snapshot "$ws" --name daily-backup)
[[ "$snapshot_id" =~ ^snap_[0-9a-f]{16}$ ]] || fail "unexpected snapshot id: $snapshot_id"
echo "snapshot $snapshot_id (daily-backup)"

step "Something goes wrong"
printf '{"records": 0}' | nexus write "$ws/data.json"
printf 'import failed halfway\n' | nexus write "$ws/import.log"
nexus workspace diff "$snapshot_id"

step "Restore snapshot"
nexus workspace restore "$ws" "$snapshot_id"
data=$(nexus cat "$ws/data.json")
[[ "$data" == '{"records": 1000}' ]] || fail "after the restore data.json holds $data"
echo "data.json is $data again"

step "Create agent session"
session_id=$(nexus session create --agent gpt-4-agent --metadata '{"user_id": "user_123", "conversation_id": "conv_456"}')
[[ "$session_id" =~ ^sess_[0-9a-f]{16}$ ]] || fail "unexpected session id: $session_id"
echo "session $session_id"

step "The agent writes in its session"
printf '{"messages": [{"role": "user", "content": "What is Nexus?"}]}' | nexus write --session "$session_id" -p "$ws/memory/conversation.json"
printf '{"records": 1001}' | nexus write --session "$session_id" "$ws/data.json"

step "List sessions"
nexus session list --agent gpt-4-agent

step "Files the session wrote"
files=$(nexus session files "$session_id")
echo "$files"
grep -q "$ws/memory/conversation.json" <<<"$files" || fail "the session's files do not include conversation.json"

step "What the session changed"
diff=$(nexus session diff "$session_id")
echo "$diff"
grep -qx "A $ws/memory/conversation.json" <<<"$diff" || fail "session diff does not show conversation.json as created"
grep -qx "M $ws/data.json" <<<"$diff" || fail "session diff does not show data.json as modified"

step "Done"
echo "workspace $ws, snapshot $snapshot_id, session $session_id"
