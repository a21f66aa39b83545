#!/usr/bin/env bash
# test_log_secrets.sh: no log line written during the integration tests holds a password. The
# roles' passwords are the ones dev-services made for the run (<state>/secrets/*.password, which
# the harness hands to the programs in URLs and password files); every file of the programs'
# logs (build/test-logs) and the servers' logs (*.log in the state dir) is searched for them.
# It fails when a password is found, and also when there is nothing to search (no passwords, no
# logs), so that it never passes by looking at nothing.
# Usage: test_log_secrets.sh STATE_DIR LOG_DIR
set -uo pipefail

state=${1:?usage: test_log_secrets.sh STATE_DIR LOG_DIR}
logs=${2:?usage: test_log_secrets.sh STATE_DIR LOG_DIR}

mapfile -t files < <({ find "$logs" -type f; find "$state" -type f -name '*.log'; } 2>/dev/null)
shopt -s nullglob
secrets=("$state"/secrets/*.password)
((${#secrets[@]} > 0)) || { echo "not ok - no role passwords in $state/secrets (were the integration tests run?)"; exit 1; }
((${#files[@]} > 0)) || { echo "not ok - no log files in $logs or $state"; exit 1; }

bad=0
for secret in "${secrets[@]}"; do
    password=$(head -n 1 "$secret")
    [[ ${#password} -ge 8 ]] || { echo "not ok - $secret holds no usable password"; bad=1; continue; }
    # Found lines are shown with the password masked: this test's own output is a log too.
    if hits=$(grep -rnF -- "$password" "${files[@]}"); then
        echo "not ok - the password of $(basename "$secret" .password) is in these log lines:"
        printf '%s\n' "${hits//"$password"/<PASSWORD>}" | head -n 20 | sed 's/^/#   /'
        bad=1
    else
        echo "ok - the password of $(basename "$secret" .password) is in none of ${#files[@]} log files"
    fi
done
exit "$bad"
