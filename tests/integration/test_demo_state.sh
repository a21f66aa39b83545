#!/usr/bin/env bash
# test_demo_state.sh - scripts/demo run as root from a clone the user postgres cannot enter
# (a clone inside root's home, mode 700) picks a state dir postgres can reach, under /var/tmp,
# and says where; the same one on every run, `demo stop` included. Exercised with
# `scripts/demo stop`, which chooses the state dir exactly as a run does and starts nothing.
# Needs root and the user postgres (skipped, exit 77, otherwise).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-$repo/build/test-logs/demo-state}
(( EUID == 0 )) && id postgres >/dev/null 2>&1 || { echo "needs root and the user postgres"; exit 77; }

rm -rf "$work"
mkdir -p "$work"
chmod 700 "$work"                           # like /root: closed to postgres
mkdir -p "$work/clone"
cp -r "$repo/scripts" "$work/clone/"         # the demo finds its clone from its own path

out=$(env -u TOPICFLOW_STATE_DIR "$work/clone/scripts/demo" stop 2>&1)
echo "$out"
want="user postgres cannot enter $work/clone: the servers' state goes to /var/tmp/topicflow-"
grep -qF "$want" <<<"$out" || { echo "FAIL: expected '$want'"; exit 1; }
state=$(sed -n "s|.*the servers' state goes to \(/var/tmp/topicflow-[0-9a-f]*\).*|\1|p" <<<"$out")
runuser -u postgres -- test -x "$(dirname "$state")" || { echo "FAIL: postgres cannot reach $state"; exit 1; }
again=$(env -u TOPICFLOW_STATE_DIR "$work/clone/scripts/demo" stop 2>&1)
grep -qF "goes to $state" <<<"$again" || { echo "FAIL: a second run chose another state dir: $again"; exit 1; }
[[ ! -e $work/clone/.topicflow ]] || { echo "FAIL: state written inside the closed clone"; exit 1; }

# A clone postgres can enter keeps <clone>/.topicflow; TOPICFLOW_STATE_DIR always wins.
chmod 755 "$work"
out=$(env -u TOPICFLOW_STATE_DIR "$work/clone/scripts/demo" stop 2>&1)
! grep -q "cannot enter" <<<"$out" || { echo "FAIL: an open clone was relocated: $out"; exit 1; }
chmod 700 "$work"
out=$(TOPICFLOW_STATE_DIR=$work/given "$work/clone/scripts/demo" stop 2>&1)
! grep -q "cannot enter" <<<"$out" || { echo "FAIL: TOPICFLOW_STATE_DIR was overridden: $out"; exit 1; }
rm -rf "$work" "$state"
echo "demo state dir: ok"
