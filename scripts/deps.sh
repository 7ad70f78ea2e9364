#!/bin/sh
# deps.sh build|test|bench: installs the Debian packages Heron needs when
# they are missing (run as root on Debian 12). Quiet when all are present.
set -e
BUILD_PKGS="build-essential pkg-config libevent-dev liblmdb-dev libssl-dev libsodium-dev libcrypt-dev libutf8proc-dev zlib1g-dev openssl"
TEST_PKGS="$BUILD_PKGS clang python3 python3-pytest curl fetchmail getmail6 isync offlineimap3 lmdb-utils dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd"
BENCH_PKGS="$BUILD_PKGS dovecot-pop3d dovecot-lmtpd dovecot-imapd"
case "$1" in
build) pkgs=$BUILD_PKGS ;;
test) pkgs=$TEST_PKGS ;;
bench) pkgs=$BENCH_PKGS ;;
*) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "missing packages:$missing (run as root, or install them)" >&2
	exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
