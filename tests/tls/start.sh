# tests/tls/start.sh: real TLS, HTTP/2 and proxy servers for a bash test. Source it:
#
#   source tests/tls/start.sh BUILD_DIR [extra fixture_server args, e.g. --latency-ms 50]
#
# It starts the fixture server (tests/fixture/start.sh) and, in a temporary folder
# ($TLS_DIR), makes a private CA and server certificates with openssl, then starts
# Debian's nginx (nginx-light) in front of the fixture (proxy_pass, so every fixture
# endpoint, the flags corpus included, answers through nginx) and tinyproxy, all on
# 127.0.0.1 with free ports. It exports:
#
#   TLS_CA          the CA's PEM file (the servers send their leaf certificate only)
#   TLS_URL         https, HTTP/2 by ALPN (and HTTP/1.1 for clients without it)
#   TLS11_URL       https, HTTP/1.1 only
#   EXPIRED_URL     https with an expired certificate (issued by the CA)
#   WRONGNAME_URL   https with a certificate for wrong.example only (issued by the CA)
#   SELFSIGNED_URL  https with a self-signed certificate
#   H2C_URL         cleartext HTTP/2 by prior knowledge only
#   H2C_GOAWAY_URL  the same, closing each connection (GOAWAY) after 30 requests
#   PLAIN_URL       cleartext HTTP/1.1
#   NGINX_LOG       nginx's access log: PORT PROTOCOL CONNECTION STATUS "REQUEST" BYTES REUSED
#                   (REUSED: r when the TLS session was resumed, else .)
#   PROXY_URL       tinyproxy, credentials included (http://sluice:PASS@127.0.0.1:PORT);
#                   PROXY_USER, PROXY_PASS, PROXY_HOSTPORT hold its parts. It tunnels
#                   (CONNECT) to the TLS ports only
#   PROXY_LOG       tinyproxy's log (LogLevel Info: each request and CONNECT)
#
# An EXIT trap runs tls_stop, which stops tinyproxy, nginx and the fixture by their PIDs
# and removes $TLS_DIR; a caller that sets its own EXIT trap must call tls_stop in it.
# Both servers stop too if the shell is killed outright (a watchdog polls it each second).
# On failure it prints why and returns 1.

tls_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

tls_stop() {
    local pid
    [[ -n ${TLS_WATCH_PID:-} ]] && kill -TERM "$TLS_WATCH_PID" 2>/dev/null
    TLS_WATCH_PID=
    for pid in ${TINYPROXY_PID:-} ${NGINX_PID:-}; do
        kill -TERM "$pid" 2>/dev/null
        local waited=0
        while kill -0 "$pid" 2>/dev/null && ((waited < 50)); do
            sleep 0.1
            waited=$((waited + 1))
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    TINYPROXY_PID= NGINX_PID=
    fixture_stop
    if [[ -n ${TLS_DIR:-} ]]; then
        rm -rf "$TLS_DIR"
        TLS_DIR=
    fi
}

# N free loopback ports, one per line (bound together, so they differ, then released).
tls_free_ports() {
    /usr/bin/python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
PY
}

# tls_cert NAME SAN [DAYS] [self]: NAME.pem and NAME.key, issued by the CA (or self-signed).
tls_cert() {
    local name=$1 san=$2 days=${3:-30} self=${4:-}
    local ext="$TLS_DIR/$name.ext"
    printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
        "$san" > "$ext"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TLS_DIR/$name.key" \
        -out "$TLS_DIR/$name.csr" -subj "/CN=$name" 2>/dev/null || return 1
    if [[ $self == self ]]; then
        openssl x509 -req -in "$TLS_DIR/$name.csr" -key "$TLS_DIR/$name.key" \
            -out "$TLS_DIR/$name.pem" -days "$days" -extfile "$ext" 2>/dev/null
    else
        openssl x509 -req -in "$TLS_DIR/$name.csr" -CA "$TLS_CA" -CAkey "$TLS_DIR/ca.key" \
            -CAcreateserial -out "$TLS_DIR/$name.pem" -days "$days" -extfile "$ext" 2>/dev/null
    fi
}

tls_certs() {
    TLS_CA=$TLS_DIR/ca.pem
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$TLS_DIR/ca.key" -out "$TLS_CA" -days 30 -subj "/CN=sluice test CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
        2>/dev/null || return 1
    tls_cert good "IP:127.0.0.1,DNS:localhost" &&
        tls_cert expired "IP:127.0.0.1,DNS:localhost" -1 &&
        tls_cert wrongname "DNS:wrong.example" &&
        tls_cert selfsigned "IP:127.0.0.1,DNS:localhost" 30 self
}

# One nginx server block: tls_server PORT "LISTEN FLAGS" [CERT] [DIRECTIVE].
tls_server() {
    local port=$1 flags=$2 cert=${3:-} directive=${4:-}
    echo "    server {"
    echo "        listen 127.0.0.1:$port $flags;"
    [[ -n $directive ]] && echo "        $directive"
    if [[ -n $cert ]]; then
        echo "        ssl_certificate $TLS_DIR/$cert.pem;"
        echo "        ssl_certificate_key $TLS_DIR/$cert.key;"
    fi
    echo "        location / { proxy_pass http://fixture; }"
    echo "    }"
}

tls_nginx_conf() {
    local fixture_port=${FIXTURE_URL##*:}
    mkdir -p "$TLS_DIR/tmp"
    [[ $(id -u) == 0 ]] && echo "user root root;"
    cat <<CONF
worker_processes 1;
daemon off;
pid $TLS_DIR/nginx.pid;
error_log $TLS_DIR/nginx.err warn;
events { worker_connections 16384; }
http {
    log_format sluice '\$server_port \$server_protocol \$connection \$status "\$request" \$body_bytes_sent \$ssl_session_reused';
    access_log $TLS_DIR/access.log sluice;
    client_body_temp_path $TLS_DIR/tmp/body;
    proxy_temp_path $TLS_DIR/tmp/proxy;
    fastcgi_temp_path $TLS_DIR/tmp/fastcgi;
    uwsgi_temp_path $TLS_DIR/tmp/uwsgi;
    scgi_temp_path $TLS_DIR/tmp/scgi;
    keepalive_requests 1000000;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:tls:1m;
    upstream fixture { server 127.0.0.1:$fixture_port; keepalive 256; }
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_buffering off;
CONF
    tls_server "$TLS_PORT" "ssl http2" good
    tls_server "$TLS11_PORT" ssl good
    tls_server "$EXPIRED_PORT" ssl expired
    tls_server "$WRONGNAME_PORT" ssl wrongname
    tls_server "$SELFSIGNED_PORT" ssl selfsigned
    tls_server "$H2C_PORT" http2
    tls_server "$H2C_GOAWAY_PORT" http2 "" "keepalive_requests 30;"
    tls_server "$PLAIN_PORT" ""
    echo "}"
}

tls_tinyproxy_conf() {
    cat <<CONF
Port $PROXY_PORT
Listen 127.0.0.1
Timeout 60
LogFile "$PROXY_LOG"
LogLevel Info
PidFile "$TLS_DIR/tinyproxy.pid"
MaxClients 256
Allow 127.0.0.1
BasicAuth $PROXY_USER $PROXY_PASS
ConnectPort $TLS_PORT
ConnectPort $TLS11_PORT
DisableViaHeader Yes
CONF
    [[ $(id -u) == 0 ]] && printf 'User root\nGroup root\n'
}

# Waits (at most 10 s) until `curl ARGS` succeeds while PID lives.
tls_wait() {
    local pid=$1 tries=0
    shift
    until curl -sf -o /dev/null --max-time 2 "$@"; do
        if ! kill -0 "$pid" 2>/dev/null || ((tries >= 100)); then
            return 1
        fi
        sleep 0.1
        tries=$((tries + 1))
    done
}

tls_start() {
    local build=${1:?usage: source tests/tls/start.sh BUILD_DIR [fixture args...]}
    shift
    for tool in nginx tinyproxy openssl; do
        if ! command -v "$tool" > /dev/null && [[ ! -x /usr/sbin/$tool ]]; then
            echo "tls: $tool is not installed (make deps installs it)" >&2
            return 1
        fi
    done
    source "$tls_here/../fixture/start.sh" "$build" "$@" || return 1
    TLS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sluice-tls.XXXXXX") || return 1
    trap tls_stop EXIT
    tls_certs || { echo "tls: openssl could not make the certificates" >&2; return 1; }
    local ports
    mapfile -t ports < <(tls_free_ports 9)
    TLS_PORT=${ports[0]} TLS11_PORT=${ports[1]} EXPIRED_PORT=${ports[2]}
    WRONGNAME_PORT=${ports[3]} SELFSIGNED_PORT=${ports[4]} H2C_PORT=${ports[5]}
    PLAIN_PORT=${ports[6]} PROXY_PORT=${ports[7]} H2C_GOAWAY_PORT=${ports[8]}
    PROXY_USER=sluice PROXY_PASS=pw-$RANDOM$RANDOM PROXY_LOG=$TLS_DIR/tinyproxy.log
    NGINX_LOG=$TLS_DIR/access.log
    tls_nginx_conf > "$TLS_DIR/nginx.conf"
    tls_tinyproxy_conf > "$TLS_DIR/tinyproxy.conf"
    local nginx=nginx tinyproxy=tinyproxy
    command -v nginx > /dev/null || nginx=/usr/sbin/nginx
    "$nginx" -p "$TLS_DIR" -c "$TLS_DIR/nginx.conf" -e "$TLS_DIR/nginx.err" \
        > "$TLS_DIR/nginx.out" 2>&1 &
    NGINX_PID=$!
    "$tinyproxy" -d -c "$TLS_DIR/tinyproxy.conf" > "$TLS_DIR/tinyproxy.out" 2>&1 &
    TINYPROXY_PID=$!
    export NGINX_PID TINYPROXY_PID
    ( while kill -0 $$ 2>/dev/null; do sleep 1; done
      kill -TERM "$NGINX_PID" "$TINYPROXY_PID" 2>/dev/null ) > /dev/null 2>&1 &
    TLS_WATCH_PID=$!
    local base=https://127.0.0.1
    export TLS_CA TLS_DIR NGINX_LOG PROXY_LOG PROXY_USER PROXY_PASS
    export TLS_URL=$base:$TLS_PORT TLS11_URL=$base:$TLS11_PORT EXPIRED_URL=$base:$EXPIRED_PORT
    export WRONGNAME_URL=$base:$WRONGNAME_PORT SELFSIGNED_URL=$base:$SELFSIGNED_PORT
    export H2C_URL=http://127.0.0.1:$H2C_PORT PLAIN_URL=http://127.0.0.1:$PLAIN_PORT
    export H2C_GOAWAY_URL=http://127.0.0.1:$H2C_GOAWAY_PORT
    export PROXY_HOSTPORT=127.0.0.1:$PROXY_PORT
    export PROXY_URL=http://$PROXY_USER:$PROXY_PASS@$PROXY_HOSTPORT
    if ! tls_wait "$NGINX_PID" --cacert "$TLS_CA" "$TLS_URL/ip"; then
        echo "tls: nginx did not start:" >&2
        cat "$TLS_DIR/nginx.err" "$TLS_DIR/nginx.out" >&2
        return 1
    fi
    if ! tls_wait "$TINYPROXY_PID" --proxy "$PROXY_URL" "$PLAIN_URL/ip"; then
        echo "tls: tinyproxy did not start:" >&2
        cat "$TLS_DIR/tinyproxy.out" "$PROXY_LOG" >&2
        return 1
    fi
    : > "$NGINX_LOG" # the readiness probes are not part of any test
}

tls_start "$@"
