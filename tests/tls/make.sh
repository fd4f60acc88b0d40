#!/usr/bin/env bash
# Remakes the test certificates here with openssl: a CA, a server
# certificate for localhost and 127.0.0.1, and a client certificate, valid
# for a century so that the self-test built into the binary keeps working.
# ECDSA P-256 keys: cheap to sign with on a router.
set -euo pipefail
cd "$(dirname "$0")"
days=36500
ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
ec ca.key
openssl req -x509 -new -key ca.key -out ca.pem -days $days -subj "/CN=dockermand test CA" \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
sign() { # name subject extensions
	ec "$1.key"
	openssl req -new -key "$1.key" -subj "$2" |
		openssl x509 -req -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" \
			-days $days -out "$1.pem" -extfile <(printf '%s\n' "$3")
}
sign server "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
sign client "/CN=selftest-client" "subjectAltName=DNS:client.selftest
extendedKeyUsage=clientAuth"
rm -f ca.key
