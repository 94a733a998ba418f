#!/usr/bin/env bash
# Serve the digits model over the OIP v2 REST binding with PHP's built-in server (local runs, tests):
#
#   examples/php/serve.sh --host 127.0.0.1 --port 8002 [--weights PATH] [--workers N]
#
# Checks the weights first (a bad file stops the start with exit 1), prints
# "digits model listening on HOST:PORT" once /v2/health/live answers 200, and on SIGTERM or SIGINT
# stops the server with all its workers and exits 0. The built-in server cannot bind port 0, so
# --port 0 picks a free port here first (another process could take it in between; pass a port
# where that matters). Production runs php-fpm behind nginx instead: see README.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

host=127.0.0.1
port=8002
weights=${DIGITS_WEIGHTS:-$here/../digits/weights.json}
workers=${PHP_CLI_SERVER_WORKERS:-4}
startup_timeout=30

usage() {
    echo "usage: serve.sh [--host HOST] [--port PORT] [--weights PATH] [--workers N]"
}
fail() { echo "serve.sh: $*" >&2; exit 1; }
bad_usage() { usage >&2; echo "serve.sh: $*" >&2; exit 2; }

while (( $# )); do
    case $1 in
        --host|--port|--weights|--workers)
            (( $# >= 2 )) || bad_usage "argument $1: expected one argument"
            declare "${1#--}=$2"
            shift 2
            ;;
        --host=*|--port=*|--weights=*|--workers=*)
            key=${1%%=*}
            declare "${key#--}=${1#*=}"
            shift
            ;;
        -h|--help) usage; exit 0 ;;
        *) bad_usage "unrecognized argument: $1" ;;
    esac
done
[[ $port =~ ^[0-9]+$ ]] && (( port <= 65535 )) || bad_usage "--port $port is not 0..65535"
[[ $workers =~ ^[1-9][0-9]*$ ]] || bad_usage "--workers $workers is not a positive integer"
command -v php >/dev/null || fail "php not found (Debian: apt-get install php-cli, or scripts/setup-polyglot.sh)"

# Load the weights once before serving, so a bad file fails here with the model's own message.
php "$here/check-weights.php" "$weights"
weights=$(cd "$(dirname "$weights")" && pwd)/$(basename "$weights")

bracketed() { if [[ $host == *:* ]]; then echo "[$host]"; else echo "$host"; fi; }
address() { echo "$(bracketed):$port"; }
if (( port == 0 )); then
    port=$(php -r '
        $server = stream_socket_server("tcp://" . $argv[1] . ":0", $code, $message);
        if ($server === false) { fwrite(STDERR, "serve.sh: cannot listen on $argv[1]: $message\n"); exit(1); }
        echo substr(strrchr(stream_socket_get_name($server, false), ":"), 1);
    ' "$(bracketed)")
fi

pid=
stopping=0
stop() {
    stopping=1
    # The built-in server forks its workers into its own process group; signal all of them.
    [[ -n $pid ]] && kill -TERM -- "-$pid" 2>/dev/null || true
}
trap stop TERM INT
trap stop EXIT

# setsid: a process group of its own, which the signal above reaches whole.
DIGITS_WEIGHTS=$weights PHP_CLI_SERVER_WORKERS=$workers setsid \
    php -d post_max_size=64M -d display_errors=0 -d expose_php=0 -S "$(address)" "$here/router.php" &
pid=$!

# Bash's own TCP client: one HTTP/1.0 request, no curl needed.
answers() {
    local status=""
    { exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null || return 1
    printf 'GET /v2/health/live HTTP/1.0\r\nHost: %s\r\n\r\n' "$(address)" >&3
    IFS= read -r -t 2 status <&3 || true
    exec 3<&- 3>&-
    [[ $status == HTTP/1.?\ 200* ]]
}
deadline=$(( SECONDS + startup_timeout ))
until answers; do
    (( stopping )) && exit 0
    kill -0 "$pid" 2>/dev/null || { wait "$pid" || true; fail "php -S exited before serving on $(address)"; }
    (( SECONDS < deadline )) || fail "php -S did not answer on $(address) within ${startup_timeout}s"
    sleep 0.05
done
echo "digits model listening on $(address)"

status=0
wait "$pid" || status=$?
# A signal interrupts wait; reap the server before leaving.
while kill -0 "$pid" 2>/dev/null; do wait "$pid" || true; done
trap - EXIT
(( stopping )) && exit 0
fail "php -S exited with status $status"
