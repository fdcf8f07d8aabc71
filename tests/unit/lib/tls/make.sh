#!/bin/sh
# Regenerate the fixtures (see README). EC P-256 keys, 36500 days.
set -e
cd "$(dirname "$0")"
ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }
ca() {
        ec "$1"
        openssl req -x509 -new -key "$1.key" -subj "/CN=$1" -days 36500 -out "$1.pem" \
                -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
leaf() { # name subject ca eku [san]
        ec "$1"
        openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
        printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\n%s\n' "$4" "$5" > "$1.ext"
        openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -days 36500 \
                -extfile "$1.ext" -out "$1.pem" 2>/dev/null
        rm -f "$1.csr" "$1.ext"
}
ca ca
ca other-ca
leaf server /CN=server ca serverAuth subjectAltName=IP:127.0.0.1
leaf alice "/O=team-a/O=team-b/CN=alice" ca clientAuth
leaf mallory /CN=mallory other-ca clientAuth
leaf alice-server-only /CN=alice ca serverAuth
rm -f ./*.srl other-ca.key ca.key
