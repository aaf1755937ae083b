#!/usr/bin/env bash
# HTTPS, HTTP/2 and proxies against real servers (tests/tls/start.sh: nginx with a private
# CA in front of the fixture, and tinyproxy): certificate checks and their messages,
# HTTP/2 by ALPN and h2c seen in nginx's log with one connection for 100 concurrent
# requests, HTTP/1.1 still working, TLS sessions resumed, requests through the proxy (its
# log shows them) from limits.http.proxy and from the proxy variables, no_proxy, a dead
# or refusing proxy named with its credentials masked, a gzip bomb stopped at max_bytes
# with bounded memory, and the shipped flags workflow over HTTPS+h2.
# Usage: tls.sh SLUICE BUILD_DIR SOURCE_DIR
set -u
sluice=$1 build=$2 src=$3
unset http_proxy https_proxy HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY SSL_CERT_FILE
source "$src/tests/tls/start.sh" "$build" || exit 1
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-tlstest.XXXXXX")
trap 'tls_stop; [[ -n ${SLUICE_TEST_KEEP:-} ]] && echo "kept $work" || rm -rf "$work"' EXIT
cd "$work" || exit 1
passed=0 failed=0
check() { if eval "$1"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $1"; fi; }
py=/usr/bin/python3
# sluice run NAME.yaml [args]: stdout+stderr in NAME.out, status in $status
run() {
    timeout 120 "$sluice" run "$1.yaml" "${@:2}" > "$1.out" 2>&1 < /dev/null
    status=$?
}
# nginx log lines of PORT (since the log was last emptied)
log_of() { grep "^$1 " "$NGINX_LOG"; }
dead_port=$(tls_free_ports 1)

# A workflow: get URL (with `limits.http` LIMITS), writing the response to out/NAME.json.
get_wf() {
    cat > "$1.yaml" <<EOF
limits: { http: { $3 } }
steps:
  get:
    uses: http.get
    retry: { attempts: 3, backoff: 10ms }
    with: { url: "$2", max_bytes: 1048576 }
  record:
    uses: file.write
    with: { path: out/$1.json, content: "\${{ steps.get.body }}" }
EOF
}

# ---- TLS: a private CA, and each refusal in words -------------------------------------
get_wf ok "$TLS_URL/ip" "ca_file: $TLS_CA"
run ok; check '[[ $status == 0 ]]'
check 'grep -q "127.0.0.1" out/ok.json'
check 'grep -q "1 connection (HTTP/2: 1)" ok.out'
check '[[ $(log_of "$TLS_PORT" | grep -c " HTTP/2.0 .* 200 \"GET /ip HTTP/2.0\"") == 1 ]]'

# $SSL_CERT_FILE names the CA bundle when the workflow does not.
get_wf env_ca "$TLS_URL/ip" ""
SSL_CERT_FILE=$TLS_CA run env_ca; check '[[ $status == 0 ]]'

# Without the CA: refused, saying why, and not retried.
get_wf no_ca "$TLS_URL/ip" ""
run no_ca; check '[[ $status == 1 ]]'
check 'grep -q "GET $TLS_URL/ip: TLS certificate of 127.0.0.1 is issued by an unknown CA (not in the system.s CA store: name a private CA.s PEM file in limits.http.ca_file): SSL certificate problem: unable to get local issuer certificate (attempt 1)" no_ca.out'
check '! grep -q "attempt 2" no_ca.out'

get_wf expired "$EXPIRED_URL/ip" "ca_file: $TLS_CA"
run expired; check '[[ $status == 1 ]]'
check 'grep -q "GET $EXPIRED_URL/ip: TLS certificate of 127.0.0.1 has expired: SSL certificate problem: certificate has expired (attempt 1)" expired.out'

get_wf wrongname "$WRONGNAME_URL/ip" "ca_file: $TLS_CA"
run wrongname; check '[[ $status == 1 ]]'
check 'grep -q "GET $WRONGNAME_URL/ip: TLS certificate of 127.0.0.1 does not match the host name: .*127.0.0.1" wrongname.out'

get_wf selfsigned "$SELFSIGNED_URL/ip" "ca_file: $TLS_CA"
run selfsigned; check '[[ $status == 1 ]]'
check 'grep -q "GET $SELFSIGNED_URL/ip: TLS certificate of 127.0.0.1 is self-signed (not in the CA file $TLS_CA from limits.http.ca_file): SSL certificate problem: self.signed certificate" selfsigned.out'

# The CA file replaces the system store: a file holding another CA trusts nothing here.
cp "$TLS_DIR/selfsigned.pem" other_ca.pem
get_wf other_ca "$TLS_URL/ip" "ca_file: other_ca.pem"
run other_ca; check '[[ $status == 1 ]]'
check 'grep -q "is issued by an unknown CA (not in the CA file other_ca.pem from limits.http.ca_file)" other_ca.out'

# ---- HTTP/2: 100 concurrent requests, one connection -------------------------------------
# many NAME URL LIMITS: 100 requests at once (each held 300 ms by the server)
many() {
    cat > "$1.yaml" <<EOF
limits: { http: { concurrency: 128, per_host: 100, $3 } }
steps:
  get:
    uses: http.get
    foreach: "\${{ range(1, 100) }}"
    with: { url: "$2/anything/\${{ item }}?delay_ms=300" }
EOF
    : > "$NGINX_LOG"
    run "$1"
}
many h2 "$TLS_URL" "ca_file: $TLS_CA"
check '[[ $status == 0 ]]'
check '[[ $(log_of "$TLS_PORT" | grep -c " HTTP/2.0 [0-9]* 200 ") == 100 ]]'
check '[[ $(log_of "$TLS_PORT" | cut -d" " -f3 | sort -u | wc -l) == 1 ]]'
check 'grep -q "http: 100 requests, 0 failed, .*, at most 100 in flight, 1 connection (HTTP/2: 100)" h2.out'

many h2c "$H2C_URL" "h2c: true"
check '[[ $status == 0 ]]'
check '[[ $(log_of "$H2C_PORT" | grep -c " HTTP/2.0 [0-9]* 200 ") == 100 ]]'
check '[[ $(log_of "$H2C_PORT" | cut -d" " -f3 | sort -u | wc -l) == 1 ]]'
check 'grep -q "1 connection (HTTP/2: 100)" h2c.out'

# h2c when the server closes its connections (GOAWAY after 30 requests): new connections
# are made by prior knowledge, every request succeeds; and with max_streams, one connection.
cat > h2c_goaway.yaml <<EOF
limits: { http: { per_host: 20, h2c: true } }
steps:
  get:
    uses: http.get
    foreach: "\${{ range(1, 200) }}"
    with: { url: "$H2C_GOAWAY_URL/anything/\${{ item }}?delay_ms=20" }
EOF
: > "$NGINX_LOG"
run h2c_goaway; check '[[ $status == 0 ]]'
check '[[ $(grep -c " HTTP/2.0 [0-9]* 200 " "$NGINX_LOG") == 200 ]]'
check '(( $(cut -d" " -f3 "$NGINX_LOG" | sort -u | wc -l) >= 7 ))'
many h2c_streams "$H2C_URL" "h2c: true, max_streams: 10"
check '[[ $status == 0 ]]'
check '[[ $(log_of "$H2C_PORT" | grep -c " HTTP/2.0 [0-9]* 200 ") == 100 ]]'
check 'grep -q "1 connection (HTTP/2: 100)" h2c_streams.out'

# max_streams caps the streams of a connection: curl opens more connections.
many streams "$TLS_URL" "ca_file: $TLS_CA, max_streams: 10"
check '[[ $status == 0 ]]'
check '(( $(log_of "$TLS_PORT" | cut -d" " -f3 | sort -u | wc -l) >= 10 ))'
check 'grep -q "http: 100 requests, 0 failed, .*, $(log_of "$TLS_PORT" | cut -d" " -f3 | sort -u | wc -l) connections (HTTP/2: 100)" streams.out'

# HTTP/1.1 servers still work, over TLS and cleartext: one connection per request in flight,
# and TLS sessions resumed from earlier connections' (kept in the curl share).
cat > h11.yaml <<EOF
limits: { http: { ca_file: $TLS_CA, per_host: 8 } }
steps:
  first: { uses: http.get, with: { url: "$TLS11_URL/ip" } }
  tls:
    uses: http.get
    needs: [first]
    foreach: "\${{ range(1, 8) }}"
    with: { url: "$TLS11_URL/anything/\${{ item }}?delay_ms=200" }
  plain:
    uses: http.get
    foreach: "\${{ range(1, 8) }}"
    with: { url: "$PLAIN_URL/anything/\${{ item }}?delay_ms=200" }
EOF
: > "$NGINX_LOG"
run h11; check '[[ $status == 0 ]]'
check '[[ $(log_of "$TLS11_PORT" | grep -c " HTTP/1.1 [0-9]* 200 ") == 9 ]]'
check '[[ $(log_of "$PLAIN_PORT" | grep -c " HTTP/1.1 [0-9]* 200 ") == 8 ]]'
check '[[ $(log_of "$TLS11_PORT" | cut -d" " -f3 | sort -u | wc -l) == 8 ]]'
# (TLS 1.3 tickets are meant for one use: curl resumes with the latest it holds, so some
# of the 7 connections opened at once resume and others make full handshakes.)
check '(( $(log_of "$TLS11_PORT" | grep -c " r$") >= 1 ))'
check 'grep -q "(HTTP/1.1: 17)" h11.out'

# ---- proxies -------------------------------------------------------------------------
# Credentials from the environment through ${{ env.NAME }}; plain HTTP and HTTPS (CONNECT).
proxy_wf() {
    cat > "$1.yaml" <<EOF
limits:
  http:
    ca_file: $TLS_CA
    proxy: "$2"
steps:
  plain: { uses: http.get, with: { url: "$PLAIN_URL/ip?via=$1" } }
  tls: { uses: http.get, with: { url: "$TLS_URL/ip?via=$1" } }
EOF
}
export PROXY_PASS
proxy_wf proxied "http://$PROXY_USER:\${{ env.PROXY_PASS }}@$PROXY_HOSTPORT"
: > "$NGINX_LOG"
run proxied; check '[[ $status == 0 ]]'
check 'grep -q "GET http://127.0.0.1:$PLAIN_PORT/ip?via=proxied HTTP/1.1" "$PROXY_LOG"'
check 'grep -q "CONNECT 127.0.0.1:$TLS_PORT HTTP/1.1" "$PROXY_LOG"'
check '[[ $(log_of "$TLS_PORT" | grep -c "HTTP/2.0 [0-9]* 200 \"GET /ip?via=proxied HTTP/2.0\"") == 1 ]]'
check '! grep -q "$PROXY_PASS" proxied.out'

# The standard variables, when the workflow names no proxy.
get_wf env_proxy "$PLAIN_URL/ip?via=env_proxy" "ca_file: $TLS_CA"
http_proxy=$PROXY_URL run env_proxy; check '[[ $status == 0 ]]'
check 'grep -q "GET http://127.0.0.1:$PLAIN_PORT/ip?via=env_proxy HTTP/1.1" "$PROXY_LOG"'
get_wf env_tls_proxy "$TLS11_URL/ip?via=env_tls_proxy" "ca_file: $TLS_CA"
connects=$(grep -c "CONNECT 127.0.0.1:$TLS11_PORT " "$PROXY_LOG")
https_proxy=$PROXY_URL run env_tls_proxy; check '[[ $status == 0 ]]'
check '[[ $(grep -c "CONNECT 127.0.0.1:$TLS11_PORT " "$PROXY_LOG") == $((connects + 1)) ]]'

# no_proxy bypasses the variables' proxy, and the workflow's.
lines=$(wc -l < "$PROXY_LOG")
: > "$NGINX_LOG"
get_wf bypass "$PLAIN_URL/ip?via=bypass" ""
http_proxy=$PROXY_URL no_proxy=localhost,127.0.0.1 run bypass; check '[[ $status == 0 ]]'
proxy_wf bypass2 "$PROXY_URL"
NO_PROXY=127.0.0.1 run bypass2; check '[[ $status == 0 ]]'
check '[[ $(wc -l < "$PROXY_LOG") == $lines ]]'
check '[[ $(grep -c "via=bypass" "$NGINX_LOG") == 3 ]]'

# A proxy that refuses the credentials, over HTTP and HTTPS (tinyproxy answers 401, not 407).
export WRONG_PASS=wrong-$RANDOM$RANDOM
proxy_wf refused "http://$PROXY_USER:\${{ env.WRONG_PASS }}@$PROXY_HOSTPORT"
run refused; check '[[ $status == 1 ]]'
check 'grep -q "GET $PLAIN_URL/ip?via=refused: HTTP 40[17] .* (via the proxy http://$PROXY_USER:\*\*\*@$PROXY_HOSTPORT) (attempt 1)" refused.out'
check 'grep -q "GET $TLS_URL/ip?via=refused: the proxy http://$PROXY_USER:\*\*\*@$PROXY_HOSTPORT refused the tunnel to 127.0.0.1 (CONNECT answered 40[17]) (attempt 1)" refused.out'
check '! grep -q "$WRONG_PASS" refused.out'

# A dead proxy: named, masked; from the workflow and from the variables; http and socks5h.
proxy_wf dead "http://$PROXY_USER:\${{ env.PROXY_PASS }}@127.0.0.1:$dead_port"
run dead; check '[[ $status == 1 ]]'
check 'grep -q "GET $TLS_URL/ip?via=dead: cannot connect to the proxy http://$PROXY_USER:\*\*\*@127.0.0.1:$dead_port: Failed to connect to 127.0.0.1 port $dead_port" dead.out'
check '! grep -q "$PROXY_PASS" dead.out'
proxy_wf dead_socks "socks5h://$PROXY_USER:\${{ env.PROXY_PASS }}@127.0.0.1:$dead_port"
run dead_socks; check '[[ $status == 1 ]]'
check 'grep -q "cannot connect to the proxy socks5h://$PROXY_USER:\*\*\*@127.0.0.1:$dead_port" dead_socks.out'
check '! grep -q "$PROXY_PASS" dead_socks.out'
get_wf dead_env "$TLS_URL/ip" "ca_file: $TLS_CA"
https_proxy=http://u:$PROXY_PASS@127.0.0.1:$dead_port run dead_env; check '[[ $status == 1 ]]'
check 'grep -q "cannot connect to the proxy http://u:\*\*\*@127.0.0.1:$dead_port" dead_env.out'
check '! grep -q "$PROXY_PASS" dead_env.out'

# An unset variable in the proxy fails the requests, naming it.
proxy_wf unset_var "http://u:\${{ env.SLUICE_TEST_UNSET_PASS }}@$PROXY_HOSTPORT"
run unset_var; check '[[ $status == 1 ]]'
check 'grep -q "limits.http.proxy: the environment variable SLUICE_TEST_UNSET_PASS is not set" unset_var.out'

# ---- a gzip bomb through nginx stops at max_bytes, memory bounded -----------------------
get_wf bomb "$TLS_URL/bomb/gzip?mb=1024" "ca_file: $TLS_CA"
/usr/bin/time -f "%M" -o bomb.rss timeout 60 "$sluice" run bomb.yaml > bomb.out 2>&1
check '[[ $? == 1 ]]'
check 'grep -q "GET $TLS_URL/bomb/gzip?mb=1024: body exceeds max_bytes (1048576 bytes) (attempt 1)" bomb.out'
check '(( $(tail -n 1 bomb.rss) < 100000 ))' # KiB: far below the bomb's 1 GiB

# ---- the shipped flags workflow, offline over HTTPS and HTTP/2 ------------------------------
: > "$NGINX_LOG"
SSL_CERT_FILE=$TLS_CA timeout 120 "$sluice" run --quiet "$src/workflows/flags.yaml" \
    --var "base=$TLS_URL" > flags.out 2>&1
check '[[ $? == 0 ]]'
check '[[ $(ls out/flags/*.png | wc -l) == 306 ]]'
check 'curl -s "$FIXTURE_URL/256x192/de.png" | cmp - out/flags/de.png'
check '[[ $(log_of "$TLS_PORT" | grep -c " HTTP/2.0 [0-9]* 200 ") == 307 ]]'
check 'grep -q "http: 307 requests, 0 failed, .*(HTTP/2: 307)" flags.out'

echo "$passed passed, $failed failed"
(( failed == 0 ))
