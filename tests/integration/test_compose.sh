#!/usr/bin/env bash
# test_compose.sh: static checks of compose/ (no Docker engine needed, none is started). The compose
# files must pass `docker-compose config`, alone and with the cluster override; topicflow's services
# may set only the TOPICFLOW_* variables the programs read, the servers only POSTGRES_* / RABBITMQ_*;
# URLs name services that exist; the producer and the worker connect as their roles with passwords
# from secrets; the worker stays scalable; bind-mounted files, the build context and
# the Dockerfile's COPY sources exist; the Dockerfile builds Release without tests in a stage apart
# and runs as non-root. It then breaks copies of the files to prove each check can fail.
# Usage: test_compose.sh [REPO_DIR]   (default: the checkout this script is in)
set -uo pipefail

REPO=${1:-$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)}
COMPOSE=$REPO/compose
BASE=docker-compose.yml
CLUSTER=docker-compose.cluster.yml
COOKIE=compose-test-cookie   # a placeholder for the cluster's required secret

passed=0
failed=0
WORK=$(mktemp -d "${TMPDIR:-/tmp}/test_compose.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
EMPTY_ENV=$WORK/empty.env
: > "$EMPTY_ENV"

ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1"; }
# check DESCRIPTION COMMAND...: the command prints why it failed on stderr/stdout.
check() {
    local desc=$1 out
    shift
    if out=$("$@" 2>&1); then ok "$desc"; else not_ok "$desc"; printf '%s\n' "$out" | sed 's/^/#   /'; fi
}
# refute DESCRIPTION COMMAND...: the command (a check run on a broken copy) must fail.
refute() {
    local desc=$1
    shift
    if "$@" > /dev/null 2>&1; then not_ok "$desc (the broken copy passed)"; else ok "$desc"; fi
}

# docker-compose in DIR, isolated from the caller's shell variables and from a local compose/.env,
# so that the result depends on the files alone. Extra KEY=VALUE pairs go into its environment.
dc() {
    local dir=$1
    shift
    local -a vars=()
    while [[ $# -gt 0 && $1 == *=* && $1 != -* ]]; do vars+=("$1"); shift; done
    (cd "$dir" && env -i PATH="$PATH" HOME="${HOME:-/nonexistent}" "${vars[@]}" \
        docker-compose --env-file "$EMPTY_ENV" "$@")
}

# ------------------------------------------------------------------ checks on a normalised config

# Services of a normalised config (docker-compose config output), one per line.
services_of() { awk '/^services:/{s=1; next} /^[^ ]/{s=0} s && /^  [^ ]/{sub(/^  /,""); sub(/:.*/,""); print}' "$1"; }

# Lines of one service's block, with the 4-space indent of its keys kept.
service_block() {
    awk -v svc="$2" '/^services:/{s=1; next} /^[^ ]/{s=0}
        s && /^  [^ ]/{cur=$0; sub(/^  /,"",cur); sub(/:.*/,"",cur); next}
        s && cur==svc {print}' "$1"
}

# "NAME=VALUE" for every variable in a service's environment map.
env_of() {
    service_block "$1" "$2" | awk '/^    environment:/{e=1; next} /^    [^ ]/{e=0}
        e && /^      [^ ]/{sub(/^      /,""); k=$0; sub(/:.*/,"",k); v=$0; sub(/^[^:]*: ?/,"",v);
        gsub(/^'\''|'\''$/,"",v); print k "=" v}'
}

# The variables topicflow's programs read: every quoted "TOPICFLOW_*" name in their sources.
program_vars() {
    grep -rhoE '"TOPICFLOW_[A-Z0-9_]+"' "$REPO"/producer "$REPO"/worker "$REPO"/cli "$REPO"/common \
        2>/dev/null | tr -d '"' | sort -u
}

# A check on a config that docker-compose could not produce must fail, not pass vacuously.
has_services() {
    [[ -n $(services_of "$1") ]] && return 0
    echo "no services in $1 (docker-compose config failed):"
    sed 's/^/  /' "$1"
    return 1
}

image_of() { service_block "$1" "$2" | awk '/^    image:/{print $2}'; }

# Every service is a server (postgres:*, rabbitmq:*) setting only its own image's variables, or one
# of topicflow's (built from compose/Dockerfile) setting only variables its programs read: each
# variable X of theirs also as X_FILE, and a URL's <P>_URL also as <P>_PASSWORD_FILE (base/config.h).
check_env_vars() {
    local cfg=$1 svc img var bad=0
    has_services "$cfg" || return 1
    local -A allowed=()
    for var in $(program_vars) TOPICFLOW_PG_URL TOPICFLOW_AMQP_URL TOPICFLOW_LOG; do
        allowed[$var]=1
        allowed[${var}_FILE]=1
        [[ $var == *_URL ]] && allowed[${var%_URL}_PASSWORD_FILE]=1
    done
    for svc in $(services_of "$cfg"); do
        img=$(image_of "$cfg" "$svc")
        while IFS= read -r var; do
            [[ -n $var ]] || continue
            var=${var%%=*}
            case $img in
                postgres:*) [[ $var == POSTGRES_* ]] && continue ;;
                rabbitmq:*) [[ $var == RABBITMQ_* ]] && continue ;;
                *)
                    if service_block "$cfg" "$svc" | grep -q '^    build:'; then
                        [[ -n ${allowed[$var]:-} ]] && continue
                    fi ;;
            esac
            echo "service $svc (image $img) sets $var, which is not one of its documented variables"
            bad=1
        done < <(env_of "$cfg" "$svc")
    done
    return "$bad"
}

# Hosts named in TOPICFLOW_PG_URL / TOPICFLOW_AMQP_URL (comma-separated lists too) are services.
check_url_hosts() {
    local cfg=$1 svc kv url host bad=0
    has_services "$cfg" || return 1
    local services
    services=" $(services_of "$cfg" | tr '\n' ' ') "
    for svc in $(services_of "$cfg"); do
        while IFS= read -r kv; do
            case ${kv%%=*} in TOPICFLOW_PG_URL | TOPICFLOW_AMQP_URL) ;; *) continue ;; esac
            IFS=, read -ra urls <<< "${kv#*=}"
            for url in "${urls[@]}"; do
                host=${url#*://}
                host=${host%%/*}
                host=${host##*@}
                host=${host%%:*}
                if [[ $services != *" $host "* ]]; then
                    echo "service $svc: ${kv%%=*} names host '$host', which is no service"
                    bad=1
                fi
            done
        done < <(env_of "$cfg" "$svc")
    done
    return "$bad"
}

# The secrets a service mounts, one per line.
secrets_of() {
    service_block "$1" "$2" | awk '/^    secrets:/{v=1; next} /^    [^ -]/{v=0} v && /^    - source: /{print $3}'
}

# The producer and the worker connect as their roles (sql/006), never as the owner, with no password
# in their URL: it comes from a mounted secret (TOPICFLOW_PG_PASSWORD_FILE=/run/secrets/NAME), the
# same secret migrate sets the role's password from; no topicflow URL holds a PostgreSQL password.
check_roles() {
    local cfg=$1 svc role url file secret var bad=0
    has_services "$cfg" || return 1
    for svc in producer worker; do
        role=topicflow_$svc
        url=$(env_of "$cfg" "$svc" | sed -n 's/^TOPICFLOW_PG_URL=//p')
        [[ $url == postgresql://"$role"@* ]] ||
            { echo "$svc's TOPICFLOW_PG_URL is '$url', not postgresql://$role@... (its role, no password)"; bad=1; }
        file=$(env_of "$cfg" "$svc" | sed -n 's/^TOPICFLOW_PG_PASSWORD_FILE=//p')
        secret=${file#/run/secrets/}
        if [[ -z $file || $file == "$secret" ]]; then
            echo "$svc's TOPICFLOW_PG_PASSWORD_FILE is '$file', not a secret in /run/secrets"; bad=1; continue
        fi
        secrets_of "$cfg" "$svc" | grep -qx "$secret" ||
            { echo "$svc reads its password from secret $secret, which it does not mount"; bad=1; }
        var=TOPICFLOW_${svc^^}_PASSWORD_FILE
        env_of "$cfg" migrate | grep -qx "$var=$file" ||
            { echo "migrate does not set $role's password from $file ($var)"; bad=1; }
        secrets_of "$cfg" migrate | grep -qx "$secret" ||
            { echo "migrate does not mount secret $secret"; bad=1; }
    done
    for svc in $(services_of "$cfg"); do
        url=$(env_of "$cfg" "$svc" | sed -n 's/^TOPICFLOW_PG_URL=//p')
        if [[ $url =~ ^[a-z]+://[^@/]*:[^@/]*@ ]]; then
            echo "service $svc's TOPICFLOW_PG_URL holds a password: use TOPICFLOW_PG_PASSWORD_FILE"; bad=1
        fi
    done
    return "$bad"
}

check_worker_scalable() {
    local cfg=$1 block
    block=$(service_block "$cfg" worker)
    [[ -n $block ]] || { echo "no worker service"; return 1; }
    if grep -qE '^    (container_name|ports):' <<< "$block"; then
        echo "worker sets container_name or ports, so --scale worker=N cannot start N copies:"
        grep -E '^    (container_name|ports):' -A 1 <<< "$block"
        return 1
    fi
}

# Build contexts, Dockerfiles and bind-mounted host paths exist (config resolves them to absolute
# paths but checks only the context; a missing file would be mounted as an empty directory).
check_paths() {
    local cfg=$1 svc line ctx df src bad=0
    has_services "$cfg" || return 1
    for svc in $(services_of "$cfg"); do
        ctx=$(service_block "$cfg" "$svc" | awk '/^      context:/{print $2}')
        df=$(service_block "$cfg" "$svc" | awk '/^      dockerfile:/{print $2}')
        if [[ -n $ctx ]]; then
            [[ -f $ctx/${df:-Dockerfile} ]] || { echo "service $svc: no Dockerfile $ctx/${df:-Dockerfile}"; bad=1; }
        fi
        while IFS= read -r line; do
            src=${line#    - }
            src=${src%%:*}
            [[ $src == /* ]] || continue
            [[ -e $src ]] || { echo "service $svc mounts $src, which does not exist"; bad=1; }
        done < <(service_block "$cfg" "$svc" | awk '/^    volumes:/{v=1; next} /^    [^ -]/{v=0} v && /^    - /')
    done
    return "$bad"
}

# The commands of topicflow's services are programs the image installs.
check_commands() {
    local cfg=$1 svc prog bad=0
    has_services "$cfg" || return 1
    for svc in $(services_of "$cfg"); do
        service_block "$cfg" "$svc" | grep -q '^    build:' || continue
        prog=$(service_block "$cfg" "$svc" | awk '/^    command:/{c=1; next} c && /^    - /{print $2; exit}')
        case $prog in
            topicflow | topicflow-producer | topicflow-worker) ;;
            *) echo "service $svc runs '$prog', not one of the image's programs"; bad=1 ;;
        esac
    done
    return "$bad"
}

# The cluster: three RabbitMQ nodes with fixed hostnames, one cookie, all listed in cluster.conf as
# rabbit@<hostname>, and the producer's and the workers' URL lists reach every node.
check_cluster() {
    local cfg=$1 conf=$COMPOSE/rabbitmq/cluster.conf svc host bad=0 cookies
    local -a nodes=()
    for svc in $(services_of "$cfg"); do
        [[ $(image_of "$cfg" "$svc") == rabbitmq:* ]] || continue
        host=$(service_block "$cfg" "$svc" | awk '/^    hostname:/{print $2}')
        [[ -n $host ]] || { echo "rabbitmq service $svc has no fixed hostname"; bad=1; continue; }
        nodes+=("$host")
        service_block "$cfg" "$svc" | grep -q '/etc/rabbitmq/conf.d/.*cluster' ||
            { echo "rabbitmq service $svc does not mount the cluster config"; bad=1; }
        grep -qx "cluster_formation.classic_config.nodes.[0-9]* = rabbit@$host" "$conf" ||
            { echo "cluster.conf does not list rabbit@$host"; bad=1; }
    done
    ((${#nodes[@]} == 3)) || { echo "expected 3 rabbitmq nodes, found ${#nodes[@]}: ${nodes[*]}"; bad=1; }
    [[ $(grep -c '^cluster_formation.classic_config.nodes' "$conf") == "${#nodes[@]}" ]] ||
        { echo "cluster.conf lists nodes that are not services"; bad=1; }
    cookies=$(for svc in $(services_of "$cfg"); do env_of "$cfg" "$svc"; done |
        grep '^RABBITMQ_ERLANG_COOKIE=' | sort -u | wc -l)
    [[ $cookies == 1 ]] || { echo "the nodes do not share one RABBITMQ_ERLANG_COOKIE ($cookies values)"; bad=1; }
    for svc in producer worker; do
        for host in "${nodes[@]}"; do
            env_of "$cfg" "$svc" | grep -q "^TOPICFLOW_AMQP_URL=.*@$host:" ||
                { echo "$svc's TOPICFLOW_AMQP_URL does not fail over to $host"; bad=1; }
        done
    done
    return "$bad"
}

# scripts/dev-services cluster, which tests/integration/test_cluster.c runs, has as many nodes as
# CONF lists and takes its other settings from compose/rabbitmq/cluster.conf.
check_dev_services_cluster() {
    local conf=$1 script=$REPO/scripts/dev-services size nodes bad=0
    size=$(sed -n 's/^CLUSTER_SIZE=\([0-9]*\).*/\1/p' "$script")
    nodes=$(grep -c '^cluster_formation.classic_config.nodes' "$conf")
    [[ $size == "$nodes" ]] ||
        { echo "scripts/dev-services runs a cluster of ${size:-?} nodes, $conf lists $nodes"; bad=1; }
    # shellcheck disable=SC2016 # the line as the script spells it
    grep -qF 'CLUSTER_CONF=$REPO_DIR/compose/rabbitmq/cluster.conf' "$script" ||
        { echo "scripts/dev-services does not take its cluster settings from compose/rabbitmq/cluster.conf"; bad=1; }
    return "$bad"
}

# ------------------------------------------------------------------ Dockerfile (read, not built)

DOCKERFILE=$COMPOSE/Dockerfile

# The Dockerfile's instructions, one per line (continuation lines joined, comments dropped).
df_lines() { sed -e '/^[[:space:]]*#/d' -e ':a' -e '/\\$/{N; s/\\\n[[:space:]]*/ /; ta}' "$DOCKERFILE"; }

check_dockerfile_stages() {
    local bad=0 last_user
    df_lines | grep -qE '^FROM debian:bookworm(-slim)? AS build$' || { echo "no Debian bookworm build stage"; bad=1; }
    [[ $(df_lines | grep -c '^FROM ') -ge 2 ]] || { echo "not multi-stage"; bad=1; }
    df_lines | grep '^FROM ' | grep -vqE '^FROM debian:bookworm' && { echo "a stage is not Debian bookworm"; bad=1; }
    last_user=$(df_lines | awk '/^FROM /{u=""} /^USER /{u=$2} END{print u}')
    [[ -n $last_user && $last_user != root && $last_user != 0 && $last_user != 0:* && $last_user != root:* ]] ||
        { echo "the runtime stage does not switch to a non-root user (USER '$last_user')"; bad=1; }
    return "$bad"
}

check_dockerfile_build() {
    local bad=0 opt cmake_line
    cmake_line=$(df_lines | grep -E '^RUN .*cmake -S' || true)
    [[ -n $cmake_line ]] || { echo "no cmake configure step"; return 1; }
    for opt in TOPICFLOW_TESTS TOPICFLOW_BENCH; do
        grep -qE "^option\($opt " "$REPO/CMakeLists.txt" || { echo "CMakeLists.txt has no option $opt"; bad=1; }
        [[ $cmake_line == *"-D$opt=OFF"* ]] || { echo "cmake is not given -D$opt=OFF"; bad=1; }
    done
    [[ $cmake_line == *-DCMAKE_BUILD_TYPE=Release* ]] || { echo "not a Release build"; bad=1; }
    return "$bad"
}

# COPY sources of the build context exist; the runtime stage gets the three programs and the data.
check_dockerfile_copies() {
    local bad=0 src prog bin_copy
    for src in $(df_lines | awk '/^COPY / && !/--from=/{ for (i = 2; i < NF; i++) print $i }'); do
        [[ -e $REPO/${src%/} ]] || { echo "COPY source $src is not in the build context"; bad=1; }
    done
    bin_copy=$(df_lines | grep -E '^COPY --from=build .* /usr/local/bin/?$' || true)
    [[ -n $bin_copy ]] || { echo "no programs copied to /usr/local/bin"; bad=1; }
    for prog in topicflow topicflow-producer topicflow-worker; do
        [[ " $bin_copy " == *"/build/bin/$prog "* ]] || { echo "the image does not get $prog"; bad=1; }
    done
    df_lines | grep -qE '^COPY --from=build /src/data/? /usr/share/topicflow/?$' || { echo "data/ not in /usr/share/topicflow"; bad=1; }
    df_lines | grep -qE '^ENV TOPICFLOW_DATA_DIR=/usr/share/topicflow$' || { echo "TOPICFLOW_DATA_DIR not set"; bad=1; }
    return "$bad"
}

check_dockerfile_no_secrets() {
    if df_lines | grep -iE '^(ENV|ARG) .*(PASS|SECRET|COOKIE|TOKEN|_URL)'; then
        echo "the Dockerfile bakes a credential or a connection setting into the image"
        return 1
    fi
}

# The build stage installs the -dev packages scripts/install-deps lists (the tests' cmocka aside),
# and no -dev package that install-deps lacks: both stay in step when a library is added.
# -dev packages only the tests, the benchmarks or the fuzzers use: the image's Release build
# has none of them on (check_dockerfile_build).
NOT_IN_IMAGE='libcmocka-dev|libjansson-dev|libclang-rt-dev'

check_dockerfile_packages() {
    local bad=0 pkg
    local -a want have
    mapfile -t want < <(awk '/^PACKAGES=\(/{p=1; next} p && /^\)/{p=0} p{print $1}' "$REPO/scripts/install-deps" |
        grep -- '-dev$' | grep -vxE "$NOT_IN_IMAGE" | sort -u)
    mapfile -t have < <(df_lines | awk '/^FROM .* AS build$/{b=1; next} /^FROM /{b=0} b' |
        grep -oE '\b[a-z0-9.+-]+-dev\b' | sort -u)
    ((${#want[@]} > 0)) || { echo "no -dev packages found in scripts/install-deps"; return 1; }
    for pkg in "${want[@]}"; do
        [[ " ${have[*]} " == *" $pkg "* ]] || { echo "build stage lacks $pkg (in scripts/install-deps)"; bad=1; }
    done
    for pkg in "${have[@]}"; do
        [[ " ${want[*]} " == *" $pkg "* ]] || { echo "build stage installs $pkg, which scripts/install-deps lacks"; bad=1; }
    done
    return "$bad"
}

# with_dockerfile FILE CHECK: runs a Dockerfile check on another file.
with_dockerfile() { local DOCKERFILE=$1; shift; "$@"; }

# ------------------------------------------------------------------ run

if ! command -v docker-compose > /dev/null; then
    echo "not ok - docker-compose is not installed (scripts/install-deps installs it)"
    echo "0 passed, 1 failed"
    exit 1
fi

BASE_CFG=$WORK/base.yml
CLUSTER_CFG=$WORK/cluster.yml

check "base file passes docker-compose config" dc "$COMPOSE" -f "$BASE" config -q
check "cluster override merged with the base passes docker-compose config" \
    dc "$COMPOSE" RABBITMQ_ERLANG_COOKIE=$COOKIE -f "$BASE" -f "$CLUSTER" config -q
refute "cluster refuses to start without RABBITMQ_ERLANG_COOKIE" dc "$COMPOSE" -f "$BASE" -f "$CLUSTER" config -q

dc "$COMPOSE" -f "$BASE" config > "$BASE_CFG" 2>&1 || true
dc "$COMPOSE" RABBITMQ_ERLANG_COOKIE=$COOKIE -f "$BASE" -f "$CLUSTER" config > "$CLUSTER_CFG" 2>&1 || true

for variant in base cluster; do
    cfg=$WORK/$variant.yml
    check "$variant: services set only their documented variables" check_env_vars "$cfg"
    check "$variant: connection URLs name existing services" check_url_hosts "$cfg"
    check "$variant: worker has no container_name and no published port" check_worker_scalable "$cfg"
    check "$variant: producer and worker connect as their roles, passwords from secrets" check_roles "$cfg"
    check "$variant: build context, Dockerfile and mounted files exist" check_paths "$cfg"
    check "$variant: services run the image's programs" check_commands "$cfg"
done
check "cluster: three nodes, one cookie, all in cluster.conf and in the clients' URL lists" check_cluster "$CLUSTER_CFG"
check "cluster: scripts/dev-services runs the same cluster (node count, cluster.conf)" \
    check_dev_services_cluster "$COMPOSE/rabbitmq/cluster.conf"

check "Dockerfile: multi-stage bookworm, runtime as non-root" check_dockerfile_stages
check "Dockerfile: Release build without tests and benchmarks (options exist)" check_dockerfile_build
check "Dockerfile: COPY sources exist; programs and data installed" check_dockerfile_copies
check "Dockerfile: no credential or connection setting baked in" check_dockerfile_no_secrets
check "Dockerfile: build stage's -dev packages match scripts/install-deps" check_dockerfile_packages

# Each check must be able to fail: break copies of the files and expect a failure.
broken() {   # broken NAME: a fresh copy of compose/ in $WORK/NAME (its parent is a build context)
    rm -rf "${WORK:?}/$1"
    mkdir -p "$WORK/$1"
    cp -r "$COMPOSE" "$WORK/$1/compose"
    rm -f "$WORK/$1/compose/.env"
    echo "$WORK/$1/compose"
}
config_of() {   # config_of DIR: its normalised base config in DIR/config.yml; the copy must stay valid
    dc "$1" -f "$BASE" config > "$1/config.yml" 2>&1 ||
        not_ok "the copy in $1 should still pass docker-compose config: $(head -n 1 "$1/config.yml")"
}

d=$(broken yaml)
sed -i 's/^  worker:$/  worker:\n    no_such_key: 1/' "$d/$BASE"
refute "an unknown key in docker-compose.yml fails docker-compose config" dc "$d" -f "$BASE" config -q

d=$(broken yaml2)
sed -i 's/^  producer:$/  producer:\n   bad_indent: [/' "$d/$BASE"
refute "malformed YAML in docker-compose.yml fails docker-compose config" dc "$d" -f "$BASE" config -q

d=$(broken cluster)
sed -i 's/^  rabbitmq2:$/  rabbitmq2:\n    healthcheck: yes/' "$d/$CLUSTER"
refute "a broken docker-compose.cluster.yml fails docker-compose config" \
    dc "$d" RABBITMQ_ERLANG_COOKIE=$COOKIE -f "$BASE" -f "$CLUSTER" config -q

d=$(broken nodes)
echo "cluster_formation.classic_config.nodes.4 = rabbit@rabbitmq4" >> "$d/rabbitmq/cluster.conf"
refute "a compose cluster larger than dev-services' is caught" check_dev_services_cluster "$d/rabbitmq/cluster.conf"

d=$(broken envvar)
sed -i 's/^      TOPICFLOW_LOG: \(.*\)$/      TOPICFLOW_LOG: \1\n      DATABASE_URL: postgres:\/\/x/' "$d/$BASE"
config_of "$d"
refute "a variable outside the documented ones is caught" check_env_vars "$d/config.yml"

d=$(broken urlhost)
sed -i 's/@postgres:5432/@db:5432/' "$d/$BASE"
config_of "$d"
refute "a URL naming no service is caught" check_url_hosts "$d/config.yml"

d=$(broken owner)
# shellcheck disable=SC2016 # the compose file's own ${...}
sed -i 's/postgresql:\/\/topicflow_producer@/postgresql:\/\/${POSTGRES_USER:-topicflow}@/' "$d/$BASE"
config_of "$d"
refute "a producer connecting as the owner is caught" check_roles "$d/config.yml"

d=$(broken secret)
sed -i 's|TOPICFLOW_PG_PASSWORD_FILE: /run/secrets/topicflow_worker_password|TOPICFLOW_PG_PASSWORD_FILE: /run/secrets/postgres_password|' "$d/$BASE"
config_of "$d"
refute "a worker reading a secret it does not mount is caught" check_roles "$d/config.yml"

d=$(broken inline)
sed -i 's/postgresql:\/\/topicflow_worker@/postgresql:\/\/topicflow_worker:pw@/' "$d/$BASE"
config_of "$d"
refute "a password inside a URL is caught" check_roles "$d/config.yml"

d=$(broken cname)
sed -i 's/^  worker:$/  worker:\n    container_name: topicflow-worker/' "$d/$BASE"
config_of "$d"
refute "a container_name on the worker is caught" check_worker_scalable "$d/config.yml"

d=$(broken port)
sed -i 's/^  worker:$/  worker:\n    ports: ["8080:8080"]/' "$d/$BASE"
config_of "$d"
refute "a fixed port on the worker is caught" check_worker_scalable "$d/config.yml"

d=$(broken mount)
rm "$d/rabbitmq/topicflow.conf"
config_of "$d"
refute "a missing bind-mounted file is caught" check_paths "$d/config.yml"

df=$WORK/Dockerfile.root
sed 's/^USER .*/USER root/' "$DOCKERFILE" > "$df"
refute "a runtime stage running as root is caught" with_dockerfile "$df" check_dockerfile_stages

df=$WORK/Dockerfile.tests
sed 's/ -DTOPICFLOW_TESTS=OFF//' "$DOCKERFILE" > "$df"
refute "a build with the tests on is caught" with_dockerfile "$df" check_dockerfile_build

df=$WORK/Dockerfile.secret
sed 's/^ENV TOPICFLOW_DATA_DIR=.*/&\nENV TOPICFLOW_PG_URL=postgresql:\/\/u:secret@db\/x/' "$DOCKERFILE" > "$df"
refute "a connection setting baked into the image is caught" with_dockerfile "$df" check_dockerfile_no_secrets

df=$WORK/Dockerfile.copy
sed 's/^COPY sql\/ sql\/$/COPY sql\/ migrations\/ sql\//' "$DOCKERFILE" > "$df"
refute "a COPY of a path missing from the context is caught" with_dockerfile "$df" check_dockerfile_copies

df=$WORK/Dockerfile.worker
sed 's/ \/src\/build\/bin\/topicflow-worker//' "$DOCKERFILE" > "$df"
refute "an image without topicflow-worker is caught" with_dockerfile "$df" check_dockerfile_copies

df=$WORK/Dockerfile.pkg
sed 's/^ *libstemmer-dev *\\$/        \\/' "$DOCKERFILE" > "$df"
refute "a -dev package missing from the build stage is caught" with_dockerfile "$df" check_dockerfile_packages

echo "compose: $passed passed, $failed failed"
((failed == 0))
