#!/usr/bin/env bash
# A private certificate authority and one server certificate for the TLS tests (issue 13: "TLS settings pass through
# for every client"). Sourced by scripts/services.sh (tls_up/_down/_status) before the servers that use it:
#
#   .services/tls/ca.pem             the CA the tests trust (KONDUIT_TEST_TLS_CA)
#   .services/tls/server.pem, .key   the server certificate, for 127.0.0.1, 127.0.0.3 and localhost
#   .services/tls/server.p12         the same key and certificate as PKCS#12 (password: konduit-test), for Java servers
#
# PostgreSQL serves TLS with it (the tests' default connection string says SSL Mode=Disable; a TLS test asks for
# VerifyFull), and the secured Cassandra node requires it. Certificates are made once and kept; `down` keeps them.

_tls_root() { (cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd); }
_tls_dir() { echo "$(_tls_root)/.services/tls"; }
_tls_log() { echo "[services] tls: $*" >&2; }
TLS_P12_PASSWORD="konduit-test"

tls_up() {
  local dir
  dir="$(_tls_dir)"
  mkdir -p "$dir"
  command -v openssl >/dev/null 2>&1 || { declare -F apt_install >/dev/null && apt_install openssl; }
  if [ ! -s "$dir/ca.pem" ] || [ ! -s "$dir/server.p12" ] || ! openssl x509 -checkend 86400 -noout -in "$dir/server.pem" >/dev/null 2>&1; then
    _tls_log "creating a private CA and a server certificate in $dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Konduit test CA" \
      -keyout "$dir/ca.key" -out "$dir/ca.pem" >/dev/null 2>&1 || { _tls_log "openssl could not create the CA"; return 1; }
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$dir/server.key" -out "$dir/server.csr" >/dev/null 2>&1 \
      || { _tls_log "openssl could not create the server key"; return 1; }
    printf 'subjectAltName=IP:127.0.0.1,IP:127.0.0.3,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$dir/server.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 3650 \
      -extfile "$dir/server.ext" -out "$dir/server.pem" >/dev/null 2>&1 || { _tls_log "openssl could not sign the server certificate"; return 1; }
    openssl pkcs12 -export -in "$dir/server.pem" -inkey "$dir/server.key" -name server -passout "pass:$TLS_P12_PASSWORD" \
      -out "$dir/server.p12" || { _tls_log "openssl could not write the PKCS#12 keystore"; return 1; }
    chmod 600 "$dir"/*.key
  fi
  if declare -F env_set >/dev/null; then env_set KONDUIT_TEST_TLS_CA "$dir/ca.pem"; fi
  _tls_log "ready (KONDUIT_TEST_TLS_CA)"
}

tls_down() { :; }

tls_status() {
  if [ -s "$(_tls_dir)/ca.pem" ]; then echo "tls: certificates in $(_tls_dir)"; else echo "tls: none"; return 1; fi
}
