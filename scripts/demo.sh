#!/bin/sh
# demo.sh: `make run`. Creates a demo configuration, a self-signed
# certificate and the demo user demo/demo under ./var (once), then runs
# Heron in the foreground on loopback: POP3 1110, POP3S 1995, LMTP 2424 and
# unix:./var/run/lmtp. (1143/1993 are reserved for IMAP.) Ctrl-C stops it.
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
var="$top/var"
heron="$top/build/heron"
mkdir -p "$var/mail" "$var/run"
if [ ! -f "$var/key.pem" ]; then
	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 \
		-subj "/CN=localhost" -keyout "$var/key.pem" \
		-out "$var/cert.pem" 2>/dev/null
	chmod 600 "$var/key.pem"
fi
if [ ! -f "$var/passwd" ]; then
	printf 'demo:%s\n' "$(echo demo | "$heron" passwd)" > "$var/passwd"
	chmod 600 "$var/passwd"
fi
if [ ! -f "$var/heron.conf" ]; then
	cat > "$var/heron.conf" <<CONF
# Demo configuration written by make run (scripts/demo.sh).
listen = pop3 127.0.0.1:1110
listen = pop3s 127.0.0.1:1995
listen = lmtp 127.0.0.1:2424
listen = lmtp unix:$var/run/lmtp
workers = 2
tls_cert = $var/cert.pem
tls_key = $var/key.pem
mail_path = $var/mail/%u/Maildir
passwd_file = $var/passwd
state_dir = $var/run
hostname = localhost
log_level = info
auth_fail_delay_msecs = 500
CONF
fi
echo "Heron demo: POP3 127.0.0.1:1110, POP3S :1995, LMTP :2424, user demo/demo"
echo "Try: curl pop3://127.0.0.1:1110/ -u demo:demo"
exec "$heron" serve -c "$var/heron.conf"
