#!/usr/bin/env bash
# Debian packages the tests drive for real: Chromium (browser tests), Dovecot (IMAP) and
# Prometheus with promtool (alert rules). Installed without starting Dovecot's or
# Prometheus' system service: the tests run their own instances.
set -euo pipefail
command -v chromium >/dev/null && [ -x /usr/sbin/dovecot ] && command -v prometheus >/dev/null \
  && command -v promtool >/dev/null && exit 0
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
created_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  created_policy=1
fi
trap '[ -n "$created_policy" ] && $SUDO rm -f /usr/sbin/policy-rc.d' EXIT
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium dovecot-imapd prometheus
