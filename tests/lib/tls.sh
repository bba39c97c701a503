# shellcheck shell=bash
# Certificates for the TLS tests, made with the openssl CLI. Source it, then:
#   tls_certs DIR   writes into DIR: ca.crt/ca.key (the test's CA);
#                   server.crt/server.key (signed by it, for localhost and
#                   127.0.0.1); client.crt/client.key (signed by it, for
#                   tls-auth-clients); other-ca.crt (a CA that signed
#                   nothing here). Returns non-zero, with openssl's words
#                   on stderr, when one cannot be made.

tls_certs() {
	local d=$1 log=$1/openssl.log
	: >"$log"
	_tls_ca() {
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
			-keyout "$d/$1.key" -out "$d/$1.crt" -subj "/CN=comfyq test $1" \
			-addext basicConstraints=critical,CA:TRUE \
			-addext keyUsage=critical,keyCertSign,cRLSign >>"$log" 2>&1
	}
	# _tls_leaf NAME CN EXTENSIONS: a key and a certificate signed by ca.
	_tls_leaf() {
		openssl req -newkey rsa:2048 -nodes -keyout "$d/$1.key" \
			-out "$d/$1.csr" -subj "/CN=$2" >>"$log" 2>&1 &&
			printf '%b' "$3" >"$d/$1.ext" &&
			openssl x509 -req -in "$d/$1.csr" -CA "$d/ca.crt" \
				-CAkey "$d/ca.key" -CAcreateserial -days 2 \
				-extfile "$d/$1.ext" -out "$d/$1.crt" >>"$log" 2>&1
	}
	if _tls_ca ca && _tls_ca other-ca &&
		_tls_leaf server localhost \
			'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' &&
		_tls_leaf client comfyq-test-client 'extendedKeyUsage=clientAuth\n'; then
		return 0
	fi
	echo "tls_certs: openssl failed:" >&2
	cat "$log" >&2
	return 1
}
