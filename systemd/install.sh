#!/usr/bin/env bash
# Install community-gateway as a hardened systemd service (docs/INSTALL.md).
#
#   sudo systemd/install.sh                  # install or update on this box
#   systemd/install.sh --root DIR --no-npm   # lay the files out under DIR (tests, images)
#
# Safe to run again: files that are already right are left alone, an existing
# /etc/community-gateway/config.yaml is never overwritten, /etc/community-gateway/drivers/ (site
# profiles) is never touched once made, users are only created once.
set -euo pipefail

NAME=community-gateway

usage() {
  cat <<EOF
usage: install.sh [--root DIR] [--source DIR] [--no-npm]

  --root DIR     install below DIR instead of / (a throwaway root for tests or an image);
                 systemctl and udevadm are only run when DIR is /
  --source DIR   the built package to install (default: the folder above this script);
                 it needs dist/: run 'npm ci && npm run build' there first
  --no-npm       skip 'npm ci --omit=dev' in /opt/$NAME (tests)
EOF
}

die() {
  echo "install.sh: $*" >&2
  exit 1
}

ROOT=/
NPM=1
SOURCE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
while [ $# -gt 0 ]; do
  case "$1" in
    --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT=$2; shift 2 ;;
    --root=*) ROOT=${1#*=}; shift ;;
    --source) [ $# -ge 2 ] || die "--source needs a directory"; SOURCE=$2; shift 2 ;;
    --source=*) SOURCE=${1#*=}; shift ;;
    --no-npm) NPM=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

[ -d "$ROOT" ] || die "--root $ROOT: no such directory"
[ -d "$SOURCE" ] || die "--source $SOURCE: no such directory"
ROOT=$(cd "$ROOT" && pwd -P)
SOURCE=$(cd "$SOURCE" && pwd -P)
# $R prefixes every target path: empty for the real root.
if [ "$ROOT" = / ]; then R=; else R=$ROOT; fi
umask 022
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

SUMMARY=()
CHANGED=0
note() { SUMMARY+=("$1"); }

# put SRC DST MODE: install a file when it is missing or different.
put() {
  local src=$1 dst=$2 mode=$3
  if [ -f "$dst" ] && cmp -s "$src" "$dst"; then
    chmod "$mode" "$dst"
    note "unchanged  ${dst#"$R"}"
    return
  fi
  local what=created
  [ -e "$dst" ] && what=updated
  install -D -m "$mode" "$src" "$dst"
  note "$what    ${dst#"$R"}"
  CHANGED=1
}

# put_dir SRC DST: replace a directory by a copy of SRC when they differ.
put_dir() {
  local src=$1 dst=$2
  if [ -d "$dst" ] && diff -rq "$src" "$dst" >/dev/null 2>&1; then
    note "unchanged  ${dst#"$R"}/"
    return
  fi
  local what=created
  [ -e "$dst" ] && what=updated
  rm -rf "$dst.new"
  cp -R "$src" "$dst.new"
  rm -rf "$dst"
  mv "$dst.new" "$dst"
  note "$what    ${dst#"$R"}/"
  CHANGED=1
}

# --- checks -----------------------------------------------------------------------------------
[ -f "$SOURCE/package.json" ] || die "$SOURCE is not the community-gateway package (no package.json)"
[ -f "$SOURCE/dist/src/cli.js" ] ||
  die "$SOURCE/dist/src/cli.js is missing: build first with 'cd $SOURCE && npm ci && npm run build'"
for f in community-gateway.service community-gateway.sysusers 99-community-gateway-serial.rules; do
  [ -f "$SOURCE/systemd/$f" ] || die "$SOURCE/systemd/$f is missing"
done
[ -f "$SOURCE/config/example-field.yaml" ] || die "$SOURCE/config/example-field.yaml is missing"
if [ -z "$R" ] && [ "$(id -u)" -ne 0 ]; then
  die "installing on this box needs root: sudo $0"
fi
command -v systemd-sysusers >/dev/null || die "systemd-sysusers not found (Debian: apt-get install systemd)"
# The unit starts /usr/bin/node (NodeSource and Debian's nodejs both put it there).
if [ -z "$R" ]; then
  [ -x /usr/bin/node ] || die "/usr/bin/node not found: install Node.js 20 or 22 (docs/INSTALL.md)"
  major=$(/usr/bin/node -p 'process.versions.node.split(".")[0]')
  [ "$major" -ge 20 ] || die "/usr/bin/node is Node $major; the gateway needs Node 20 or newer (docs/INSTALL.md)"
elif [ ! -x "$R/usr/bin/node" ]; then
  note "note       $R/usr/bin/node is missing: the unit needs it on the target system"
fi
if [ "$NPM" = 1 ]; then
  command -v npm >/dev/null || die "npm not found (it comes with Node.js), or use --no-npm"
  [ -f "$SOURCE/package-lock.json" ] || die "$SOURCE/package-lock.json is missing ('npm ci' needs it)"
fi

# --- user and groups --------------------------------------------------------------------------
# sysusers.d: the system user community-gateway in the groups dialout and gpio (gpio is created
# when missing). systemd-sysusers edits $ROOT/etc/passwd and group, so it works on any root.
put "$SOURCE/systemd/community-gateway.sysusers" "$R/usr/lib/sysusers.d/$NAME.conf" 0644
mkdir -p "$R/etc"
sysusers_out=$(systemd-sysusers --root "$ROOT" "$R/usr/lib/sysusers.d/$NAME.conf" 2>&1) ||
  die "systemd-sysusers failed: $sysusers_out"
if [ -n "$sysusers_out" ]; then
  while IFS= read -r line; do note "sysusers   $line"; done <<<"$sysusers_out"
  CHANGED=1
fi
uid=$(awk -F: -v n="$NAME" '$1 == n { print $3 }' "$R/etc/passwd")
gid=$(awk -F: -v n="$NAME" '$1 == n { print $3 }' "$R/etc/group")
[ -n "$uid" ] && [ -n "$gid" ] || die "user $NAME is not in $R/etc/passwd after systemd-sysusers"
# Ownership by number, from the target root's own passwd (right for a throwaway root too).
if [ "$(id -u)" -eq 0 ]; then
  OWNER="$uid:$gid"
else
  OWNER=
  note "note       not root: left file owners alone (the service needs $NAME to own /etc/$NAME)"
fi
own() { if [ -n "$OWNER" ]; then chown "$OWNER" "$@"; fi; }

# --- the package ------------------------------------------------------------------------------
DEST=$R/opt/$NAME
mkdir -p "$DEST"
if [ "$(cd "$DEST" && pwd -P)" = "$SOURCE" ]; then
  note "unchanged  /opt/$NAME/ (this is the installed copy itself)"
else
  # Root owns the code (cp without -p); the service user can only read it.
  for d in dist src drivers config systemd docs; do
    if [ -d "$SOURCE/$d" ]; then put_dir "$SOURCE/$d" "$DEST/$d"; fi
  done
  put "$SOURCE/README.md" "$DEST/README.md" 0644
  [ ! -f "$SOURCE/package-lock.json" ] || put "$SOURCE/package-lock.json" "$DEST/package-lock.json" 0644
  # The installed package.json has no "prepare" script: npm would run it on 'npm ci', and it
  # builds with tsc, which '--omit=dev' does not install (dist/ is already built).
  pkg_tmp=$TMP/package.json
  if command -v node >/dev/null; then
    node -e '
      const fs = require("fs");
      const p = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
      if (p.scripts) delete p.scripts.prepare;
      fs.writeFileSync(process.argv[2], JSON.stringify(p, null, 2) + "\n");
    ' "$SOURCE/package.json" "$pkg_tmp"
  else
    cp "$SOURCE/package.json" "$pkg_tmp"
  fi
  put "$pkg_tmp" "$DEST/package.json" 0644
fi
if [ "$NPM" = 1 ]; then
  # Production dependencies only; the native addons (better-sqlite3, argon2, serialport, epoll,
  # unix-dgram) are fetched or built for this machine.
  (cd "$DEST" && npm ci --omit=dev --no-audit --no-fund) || die "'npm ci --omit=dev' failed in $DEST"
  note "installed  /opt/$NAME/node_modules (npm ci --omit=dev)"
  CHANGED=1
else
  note "skipped    npm ci --omit=dev (--no-npm)"
fi

# The command for technicians: community-gateway check-config FILE, outbox, read, ...
wrapper_tmp=$TMP/$NAME
cat >"$wrapper_tmp" <<EOF
#!/bin/sh
# Installed by community-gateway systemd/install.sh: the CLI of /opt/$NAME.
# The service's state folder (admin account, audit log), as systemd's StateDirectory= gives it
# to the daemon: reset-admin and audit verify find it without --state-dir.
: "\${STATE_DIRECTORY:=/var/lib/$NAME}"
export STATE_DIRECTORY
# The daemon's allocator setting and V8 flags, as in the unit (docs/PERFORMANCE.md, "Scale").
export MALLOC_MMAP_THRESHOLD_=131072
export MALLOC_ARENA_MAX=2
exec /usr/bin/node --max-semi-space-size=1 --heap-growing-percent=20 /opt/$NAME/dist/src/cli.js "\$@"
EOF
put "$wrapper_tmp" "$R/usr/local/bin/$NAME" 0755

# --- config and state -------------------------------------------------------------------------
# The service owns /etc/community-gateway: the technician's web page rewrites config.yaml there
# (temp file + rename) and keeps config.yaml.versions/ next to it.
install -d -m 0750 "$R/etc/$NAME"
own "$R/etc/$NAME"
if [ -e "$R/etc/$NAME/config.yaml" ]; then
  note "kept       /etc/$NAME/config.yaml (never overwritten)"
else
  install -m 0640 "$SOURCE/config/example-field.yaml" "$R/etc/$NAME/config.yaml"
  note "created    /etc/$NAME/config.yaml (from config/example-field.yaml: edit it)"
  CHANGED=1
fi
own "$R/etc/$NAME/config.yaml"
# Site device profiles (docs/PROFILES.md, "Site profiles"): the technician's own models, loaded
# with the shipped ones. Made empty once; an install or upgrade never writes, empties or removes
# a file in it. Root owns it and the service's group may write it (0770): the page's profile
# upload and a remote bundle's profiles are stored there by the daemon. A folder made by an
# older install.sh (root:<group> 0750, read-only for the daemon) gets the group's write bit;
# any other owner or mode is the site's choice and left alone.
if [ -e "$R/etc/$NAME/drivers" ] || [ -L "$R/etc/$NAME/drivers" ]; then
  if [ -n "$OWNER" ] && [ ! -L "$R/etc/$NAME/drivers" ] && [ "$(stat -c '%u:%g %a' "$R/etc/$NAME/drivers")" = "0:$gid 750" ]; then
    chmod 0770 "$R/etc/$NAME/drivers"
    note "kept       /etc/$NAME/drivers/ (site profiles: files untouched; the service may now store profiles there: 0770)"
  else
    note "kept       /etc/$NAME/drivers/ (site profiles: never touched)"
  fi
else
  install -d -m 0770 "$R/etc/$NAME/drivers"
  if [ -n "$OWNER" ]; then chown "0:$gid" "$R/etc/$NAME/drivers"; fi
  note "created    /etc/$NAME/drivers/ (empty: site device profiles go here)"
fi
# gateway.db, site-secret, web-admin.json, audit.log (systemd also creates it: StateDirectory=).
install -d -m 0700 "$R/var/lib/$NAME"
own "$R/var/lib/$NAME"
note "ready      /etc/$NAME/ and /var/lib/$NAME/ (0750 and 0700${OWNER:+, owner $NAME})"

# --- systemd unit and udev rule ---------------------------------------------------------------
put "$SOURCE/systemd/community-gateway.service" "$R/etc/systemd/system/$NAME.service" 0644
put "$SOURCE/systemd/99-community-gateway-serial.rules" "$R/etc/udev/rules.d/99-community-gateway-serial.rules" 0644

# --- activate ---------------------------------------------------------------------------------
NEXT=()
if [ -n "$R" ]; then
  NEXT+=("on the target system: systemctl daemon-reload && udevadm control --reload"
    "then: systemctl enable --now $NAME")
elif [ ! -d /run/systemd/system ]; then
  NEXT+=("systemd is not running here: after boot, run systemctl enable --now $NAME")
else
  systemctl daemon-reload
  # No udevd in a container (systemd-udevd.service does not start there): the rule waits for a
  # box that runs it, the service is installed anyway.
  if udevadm control --reload 2>/dev/null; then
    # Apply the rule to adapters that are already plugged in.
    udevadm trigger --subsystem-match=tty --action=change || true
  else
    note "note       udevd is not running here: the udev rule takes effect once it runs"
  fi
  systemctl enable --quiet "$NAME"
  if ! systemctl is-active --quiet "$NAME"; then
    systemctl start "$NAME" || NEXT+=("the service did not start: journalctl -u $NAME -n 50")
    note "started    $NAME.service"
  elif [ "$CHANGED" = 1 ]; then
    # An update: the running daemon must pick up the new files.
    systemctl restart "$NAME" || NEXT+=("the service did not restart: journalctl -u $NAME -n 50")
    note "restarted  $NAME.service (files changed)"
  else
    note "unchanged  $NAME.service is running"
  fi
  NEXT+=("edit /etc/$NAME/config.yaml, check it: $NAME check-config /etc/$NAME/config.yaml"
    "then: systemctl restart $NAME; watch: journalctl -u $NAME -f")
fi
# Raspberry Pi kernels start with the memory cgroup off: MemoryHigh=/MemoryMax= do nothing then.
if [ -z "$R" ] && [ -f /sys/fs/cgroup/cgroup.controllers ] && ! grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
  NEXT+=("the memory cgroup is off, so the unit's memory cap is not enforced: add cgroup_enable=memory"
    "to the line in /boot/firmware/cmdline.txt and reboot (docs/INSTALL.md)")
fi

echo "community-gateway install (root $ROOT, source $SOURCE):"
for line in "${SUMMARY[@]}"; do echo "  $line"; done
if [ ${#NEXT[@]} -gt 0 ]; then
  echo "next:"
  for line in "${NEXT[@]}"; do echo "  $line"; done
fi
