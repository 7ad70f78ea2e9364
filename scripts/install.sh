#!/bin/sh
# install.sh: `make install`. Installs the heron binary, the man pages
# heron(8) and heron.conf(5), the systemd unit, the example configuration
# and Postfix settings, and (only if none exists) a configuration file.
#
# Variables (environment or make command line):
#   BUILD       build directory holding heron      (default: build)
#   PREFIX      installation prefix                (default: /usr/local)
#   DESTDIR     staging root prepended to every path (default: empty)
#   SYSCONFDIR  configuration root                 (default: /etc)
# Runs unprivileged when DESTDIR points somewhere writable; it never
# changes owners (files belong to whoever runs it) and running it again
# changes nothing but the installed copies of the files it owns; an
# existing heron.conf is never touched.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
SYSCONFDIR=${SYSCONFDIR:-/etc}

case "$BUILD" in
/*) bin="$BUILD/heron" ;;
*) bin="$top/$BUILD/heron" ;;
esac
case "$PREFIX" in
/*) ;;
*) echo "install.sh: PREFIX must be an absolute path: $PREFIX" >&2; exit 2 ;;
esac
case "$SYSCONFDIR" in
/*) ;;
*) echo "install.sh: SYSCONFDIR must be absolute: $SYSCONFDIR" >&2; exit 2 ;;
esac
if [ ! -x "$bin" ]; then
	echo "install.sh: $bin not found: run make first" >&2
	exit 1
fi

# Strip a trailing slash so paths in the unit file come out clean.
PREFIX=${PREFIX%/}
SYSCONFDIR=${SYSCONFDIR%/}
sbindir="$PREFIX/sbin"
man5dir="$PREFIX/share/man/man5"
man8dir="$PREFIX/share/man/man8"
unitdir="$PREFIX/lib/systemd/system"
docdir="$PREFIX/share/doc/heron"
confdir="$SYSCONFDIR/heron"

# Escapes a path for the right-hand side of a sed s||| command.
sed_escape() {
	printf '%s' "$1" | sed 's/[|&\\]/\\&/g'
}

# Install $2 (mode $1) as $3 inside DESTDIR, announcing it.
put() {
	install -m "$1" "$2" "$DESTDIR$3"
	echo "  $3"
}

for d in "$sbindir" "$man5dir" "$man8dir" "$unitdir" "$docdir" \
	"$confdir"; do
	install -d -m 0755 "$DESTDIR$d"
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
s_sbin=$(sed_escape "$sbindir")
s_conf=$(sed_escape "$confdir")

echo "installing into ${DESTDIR:-/} (PREFIX=$PREFIX SYSCONFDIR=$SYSCONFDIR)"
put 0755 "$bin" "$sbindir/heron"
put 0644 "$top/man/heron.8" "$man8dir/heron.8"
put 0644 "$top/man/heron.conf.5" "$man5dir/heron.conf.5"

# The unit names the installed binary and configuration file.
sed -e "s|/usr/local/sbin/heron|$s_sbin/heron|g" \
	-e "s|/etc/heron/|$s_conf/|g" \
	"$top/dist/heron.service" > "$tmp/heron.service"
put 0644 "$tmp/heron.service" "$unitdir/heron.service"

put 0644 "$top/etc/heron.conf.example" "$docdir/heron.conf.example"
put 0644 "$top/dist/postfix-main.cf.example" \
	"$docdir/postfix-main.cf.example"

# A starting configuration, only when there is none: an admin's file is
# never overwritten. Paths under /etc/heron follow SYSCONFDIR.
if [ -e "$DESTDIR$confdir/heron.conf" ]; then
	echo "  $confdir/heron.conf exists: left unchanged"
else
	sed -e "s|/etc/heron/|$s_conf/|g" "$top/etc/heron.conf.example" \
		> "$tmp/heron.conf"
	put 0644 "$tmp/heron.conf" "$confdir/heron.conf"
fi

if [ -z "$DESTDIR" ]; then
	cat <<MSG
Next steps: create the mail user (useradd --system --home-dir /var/mail
--shell /usr/sbin/nologin vmail), the password file ($confdir/passwd,
entries from \`heron passwd\`), the TLS certificate and key, edit
$confdir/heron.conf (\`heron check-config\` validates it), then
\`systemctl daemon-reload && systemctl enable --now heron\`.
MSG
fi
