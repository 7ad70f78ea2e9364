#!/bin/sh
# demo.sh: `make run`. Creates a demo configuration, a self-signed
# certificate and the demo user demo/demo under ./var (once), then runs
# Heron in the foreground on loopback: IMAP 1143, IMAPS 1993, POP3 1110,
# POP3S 1995, LMTP 2424 and unix:./var/run/lmtp. Ctrl-C stops it.
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
listen = imap 127.0.0.1:1143
listen = imaps 127.0.0.1:1993
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
echo "Heron demo: IMAP 127.0.0.1:1143, IMAPS :1993, POP3 :1110, POP3S :1995,"
echo "LMTP :2424, user demo/demo. Try: curl imap://127.0.0.1:1143/ -u demo:demo"
exec "$heron" serve -c "$var/heron.conf"
