#!/usr/bin/env bash
# Makes sure the real peers the tests drive are installed (../shared/DESIGN.md):
# mosquitto + clients, pymodbus (Debian's python3-pymodbus, run with /usr/bin/python3),
# socat, mbpoll, Debian's chromium for the page tests (driven by playwright-core), and
# faketime (libfaketime, LD_PRELOAD) for the clock-step tests (test/faults/clock-steps.test.ts),
# and PostgreSQL 15 for the platform consumer's store (a throwaway cluster per test: bench/peers/postgres.ts).
# As root it installs what is missing; otherwise it prints the command.
set -euo pipefail
missing=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v mosquitto_sub >/dev/null 2>&1 || missing+=(mosquitto-clients)
/usr/bin/python3 -c 'import pymodbus' >/dev/null 2>&1 || missing+=(python3-pymodbus)
command -v socat >/dev/null 2>&1 || missing+=(socat)
command -v mbpoll >/dev/null 2>&1 || missing+=(mbpoll)
[ -x /usr/bin/chromium ] || missing+=(chromium)
# The clock-step tests preload the library, not the faketime wrapper: check for the library.
dpkg -s libfaketime >/dev/null 2>&1 || compgen -G '/usr/lib/*/faketime/libfaketime.so.1' >/dev/null || missing+=(faketime)
[ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql-15)
# A CJK font, so the page screenshots (test/artifacts/) show Chinese, not boxes.
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup-peers: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "setup-peers: missing test peers: ${missing[*]}" >&2
  echo "run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi
