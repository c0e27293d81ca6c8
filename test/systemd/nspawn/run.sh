#!/usr/bin/env bash
# npm run test:systemd: the unit under a real systemd (issue 13 part 3).
#
# Boots a Debian 12 container with systemd-nspawn (systemd is PID 1 in it), installs the built
# gateway into it with systemd/install.sh, and checks, each as a pass/fail line:
#   READY=1 reached systemd; watchdog pings arrive; kill -9 is restarted; SIGSTOP longer than
#   WatchdogSec is killed by the watchdog and restarted; the sandbox lets the daemon write its
#   state and config directories and open the serial port it is given, enforces DeviceAllow=
#   (a listed tty opens, an unlisted one does not), and refuses writes to /usr; a site profile in
#   /etc/community-gateway/drivers survives a re-install and is loaded under the sandbox; a stop
#   is clean; systemd-analyze security scores at most 3.0.
# Ends with "N passed, N failed" and exits non-zero on a failure. Needs root.
#
#   npm run test:systemd                 # builds dist/ first
#   CGW_KEEP=1 bash test/systemd/nspawn/run.sh   # keep the work folder for a post-mortem
#   CGW_HOLD=1 bash test/systemd/nspawn/run.sh   # keep the container up at the end (see the log)
#
# The rootfs (debootstrap, ~35 s) is cached in $CGW_TEST_CACHE (default
# /var/cache/community-gateway-test); each run works on a copy. How this machine's quirks
# are handled (no systemd on the host, hybrid cgroups): docs/INSTALL.md "Tested under systemd".
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
CACHE=${CGW_TEST_CACHE:-/var/cache/community-gateway-test}
SUITE=bookworm
# minbase plus what the unit needs at run time. udev: every real Debian box has it, and
# install.sh calls udevadm.
INCLUDE=systemd,dbus,ca-certificates,udev
ROOTFS=$CACHE/rootfs-$SUITE
STAMP="debootstrap --variant=minbase --include=$INCLUDE $SUITE"
NAME=community-gateway
UNIT=$NAME.service
# The watchdog check waits longer than one ping interval (WatchdogSec=30s, a ping every 15 s).
WATCHDOG_WAIT=40
T0=$(date +%s)

PASS=0
FAIL=0
FAILED=()
log() { printf '[%4ds] %s\n' $(($(date +%s) - T0)) "$*"; }
pass() { PASS=$((PASS + 1)); log "PASS  $1"; }
fail() { FAIL=$((FAIL + 1)); FAILED+=("$1"); log "FAIL  $1${2:+: $2}"; }
check() { # check NAME DETAIL CMD...: pass when CMD succeeds
  local name=$1 detail=$2
  shift 2
  if "$@"; then pass "$name${detail:+ ($detail)}"; else fail "$name" "$detail"; fi
}
die() {
  log "ERROR $*"
  exit 2
}

[ "$(id -u)" -eq 0 ] || die "needs root (systemd-nspawn, debootstrap)"

# --- tools --------------------------------------------------------------------------------------
need=()
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v socat >/dev/null || need+=(socat)
/usr/bin/python3 -c 'import pymodbus' 2>/dev/null || need+=(python3-pymodbus)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null || die "apt-get install ${need[*]} failed"
fi
[ -f "$REPO/dist/src/cli.js" ] || die "$REPO/dist/src/cli.js is missing: npm run build"
[ -x /usr/bin/node ] || die "/usr/bin/node is missing (the unit runs /usr/bin/node)"

# --- teardown, also on failure --------------------------------------------------------------------
# The container's own cgroup, in the v2 hierarchy (and the v1 name=systemd one on a hybrid host).
CG=cgw-nspawn-$$
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  CG2=/sys/fs/cgroup/$CG
  CGDIRS=("$CG2")
elif [ -d /sys/fs/cgroup/unified ]; then
  CG2=/sys/fs/cgroup/unified/$CG
  CGDIRS=("$CG2" /sys/fs/cgroup/systemd/$CG)
else
  die "no cgroup v2 hierarchy (/sys/fs/cgroup or /sys/fs/cgroup/unified): DeviceAllow= cannot be shown"
fi
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/cgw-nspawn.XXXXXX")
NSPAWN=
BG=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$NSPAWN" ] && kill -0 "$NSPAWN" 2>/dev/null; then
    # SIGTERM: nspawn asks the container's systemd to power off (a clean shutdown).
    kill -TERM "$NSPAWN" 2>/dev/null
    for _ in $(seq 1 150); do kill -0 "$NSPAWN" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$NSPAWN" 2>/dev/null && kill -KILL "$NSPAWN" 2>/dev/null
  fi
  # Whatever is left of the container is in our own cgroup: end exactly those processes.
  if [ -e "$CG2/cgroup.kill" ]; then echo 1 >"$CG2/cgroup.kill" 2>/dev/null; fi
  for p in "${BG[@]}"; do kill "$p" 2>/dev/null; done
  sleep 0.3
  for d in "${CGDIRS[@]}"; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  if [ "${CGW_KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. rootfs, cached --------------------------------------------------------------------------
# The mirror apt already uses on this machine (deb822 or one-line sources), no other network.
mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v s="$SUITE" '
      /^[ \t]*$/ { if (ok && uri != "") { print uri; exit } ok = 0; uri = ""; next }
      /^URIs:/ { uri = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
      END { if (ok && uri != "") print uri }' "$f"
  done
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk -v s="$SUITE" '$1 == "deb" { sub(/\[[^]]*\] */, ""); if ($3 == s) print $2 }'
}
if [ "$(cat "$ROOTFS/.cgw-stamp" 2>/dev/null)" != "$STAMP" ]; then
  MIRROR=${CGW_DEBIAN_MIRROR:-$(mirror | head -1)}
  [ -n "$MIRROR" ] || die "no $SUITE mirror in /etc/apt/sources.list*; set CGW_DEBIAN_MIRROR"
  log "debootstrap $SUITE from $MIRROR into $ROOTFS (once; cached)"
  mkdir -p "$CACHE"
  rm -rf "$ROOTFS.new"
  t=$(date +%s)
  debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$ROOTFS.new" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -20 "$WORK/debootstrap.log"; die "debootstrap failed (log above)"; }
  # No machine-id: systemd makes a fresh one at each boot of a copy.
  : >"$ROOTFS.new/etc/machine-id"
  echo "$STAMP" >"$ROOTFS.new/.cgw-stamp"
  rm -rf "$ROOTFS"
  mv "$ROOTFS.new" "$ROOTFS"
  log "rootfs built in $(($(date +%s) - t)) s"
else
  log "rootfs from cache: $ROOTFS"
fi
ROOT=$WORK/root
t=$(date +%s)
cp -a --reflink=auto "$ROOTFS" "$ROOT"
log "rootfs copied in $(($(date +%s) - t)) s"

# --- 2. node and the gateway into it -----------------------------------------------------------------
t=$(date +%s)
cp /usr/bin/node "$ROOT/usr/bin/node"
SRC=$ROOT/root/cgw-src
mkdir -p "$SRC"
for f in package.json package-lock.json README.md dist src drivers config systemd docs; do cp -a "$REPO/$f" "$SRC/"; done
# Production dependencies from the repo's node_modules (built for this node): install.sh runs
# with --no-npm, as the container has no network.
mkdir -p "$WORK/nm"
cp -a "$REPO/node_modules" "$REPO/package.json" "$REPO/package-lock.json" "$WORK/nm/"
(cd "$WORK/nm" && npm prune --omit=dev --offline --ignore-scripts --no-audit --no-fund >/dev/null 2>&1) ||
  die "npm prune --omit=dev failed in $WORK/nm"
mkdir -p "$ROOT/opt/$NAME"
mv "$WORK/nm/node_modules" "$ROOT/opt/$NAME/node_modules"
# The site config: one RS-485 line on the port given to the container. install.sh keeps an
# existing config.yaml. Ports are the container's own (--private-network).
mkdir -p "$ROOT/etc/$NAME"
cat >"$ROOT/etc/$NAME/config.yaml" <<'EOF'
site: { communityCode: "330106001001", gatewayId: gw-nspawn-test, name: nspawn test }
localBroker: { host: 127.0.0.1, port: 1883, anonymous: off }
web: { host: 127.0.0.1, port: 8080 }
storage: { path: /var/lib/community-gateway/gateway.db }
uplink: { url: "mqtt://127.0.0.1:1884" }
buses:
  - { id: rs485, type: modbus-rtu, path: /dev/ttyGW0, baudRate: 9600, timeoutMs: 500 }
devices:
  - { id: kitchen-th, facility: canteen, profile: xy-md02, bus: rs485, unitId: 2, pollMs: 1000 }
EOF
# A site profile for the re-install check below (the technician's own model).
cp "$REPO/test/fixtures/site-drivers/acme-cr10.yaml" "$ROOT/root/acme-cr10.yaml"
log "node $(/usr/bin/node --version), the gateway and its production node_modules copied in $(($(date +%s) - t)) s"

# --- the serial line: socat joins two ptys --------------------------------------------------------
# ttyGW0 (the daemon's end) is bound into the container with the group and mode the udev rule
# gives an adapter (dialout, 0660); the device end is served by pymodbus on this side.
line() { # line NAME: a pty pair $WORK/NAME-a (container) and $WORK/NAME-b
  socat "pty,raw,echo=0,link=$WORK/$1-a" "pty,raw,echo=0,link=$WORK/$1-b" 2>>"$WORK/socat.log" &
  BG+=($!)
  for _ in $(seq 1 50); do [ -e "$WORK/$1-a" ] && [ -e "$WORK/$1-b" ] && break; sleep 0.1; done
  [ -e "$WORK/$1-a" ] || die "socat did not make $WORK/$1-a"
  local pts
  pts=$(readlink -f "$WORK/$1-a")
  chgrp dialout "$pts" && chmod 0660 "$pts"
  # Keep the daemon's end open on this side too: a restarted daemon closing the port must not
  # hang up the line (socat ends when the last holder of a pty closes it).
  /usr/bin/python3 -c 'import os, sys, time; os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY); time.sleep(86400)' "$pts" &
  BG+=($!)
}
line gw
# Unit 3 is a device of a site profile (test/fixtures/site-drivers/acme-cr10.yaml), added later.
printf '{"serial": "%s", "baudrate": 9600, "units": {"2": {"ir": {"1": 215, "2": 480}}, "3": {"hr": {"0": 65351, "1": 65356, "2": 0}}}}\n' "$WORK/gw-b" >"$WORK/map.json"
/usr/bin/python3 "$REPO/test/peers/modbus_server.py" "$WORK/map.json" >"$WORK/modbus.log" 2>"$WORK/modbus.err" &
BG+=($!)
for _ in $(seq 1 100); do grep -q READY "$WORK/modbus.log" && break; sleep 0.1; done
grep -q READY "$WORK/modbus.log" || die "pymodbus did not start: $(cat "$WORK/modbus.err")"

# --- 3. boot ------------------------------------------------------------------------------------------
# This machine has no systemd on the host and a hybrid cgroup layout:
#   --register=no --keep-unit    no machined/host systemd to register with ("Failed to open system bus")
#   SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 and --system-call-filter=bpf   cgroup v2 with BPF device
#       programs in the container, so DevicePolicy=/DeviceAllow= are enforced (on the v1 devices
#       hierarchy, read-only in the container, they are silently not)
#   --private-network            the daemon's ports (1883, 8080) stay inside the container
# The container runs in a cgroup of its own, so teardown can end exactly its processes.
for d in "${CGDIRS[@]}"; do mkdir -p "$d"; done
t=$(date +%s)
setsid bash -c '
  for d in $4; do echo $$ > "$d/cgroup.procs"; done
  SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 exec systemd-nspawn --quiet -D "$1" -M "cgw-test-$3" -b \
    --register=no --keep-unit --console=pipe --private-network --system-call-filter=bpf \
    --bind="$2":/dev/ttyGW0
' nspawn "$ROOT" "$(readlink -f "$WORK/gw-a")" "$$" "${CGDIRS[*]}" </dev/null >"$WORK/nspawn.log" 2>&1 &
NSPAWN=$!
LEADER=
# nspawn forks a short-lived helper first; the container's PID 1 is the child that became systemd.
for _ in $(seq 1 200); do
  for c in $(cat "/proc/$NSPAWN/task/$NSPAWN/children" 2>/dev/null); do
    [ "$(cat "/proc/$c/comm" 2>/dev/null)" = systemd ] && LEADER=$c
  done
  [ -n "$LEADER" ] && break
  sleep 0.1
done
[ -n "$LEADER" ] || die "systemd-nspawn did not start a container: $(cat "$WORK/nspawn.log")"
C() { nsenter -t "$LEADER" -a "$@"; }
state=
for _ in $(seq 1 120); do
  state=$(C systemctl is-system-running 2>/dev/null)
  case "$state" in running | degraded) break ;; esac
  sleep 0.5
done
log "booted in $(($(date +%s) - t)) s: PID 1 is $(C cat /proc/1/comm), system state '$state'"
booted() { [ "$(C cat /proc/1/comm)" = systemd ] && { [ "$state" = running ] || [ "$state" = degraded ]; }; }
check "systemd is PID 1 of a booted container" "virtualization: $(C systemd-detect-virt 2>/dev/null)" booted
[ "$state" = degraded ] && C systemctl --failed --no-pager --plain

# --- install with systemd/install.sh, as on a box -----------------------------------------------------
t=$(date +%s)
C bash /root/cgw-src/systemd/install.sh --source /root/cgw-src --no-npm >"$WORK/install.log" 2>&1
rc=$?
sed 's/^/    /' "$WORK/install.log"
check "systemd/install.sh installs, enables and starts the unit" "exit $rc, $(($(date +%s) - t)) s" test "$rc" = 0

show() { C systemctl show -p "$1" --value "$UNIT"; }
props() { C systemctl show -p ActiveState,SubState,NRestarts,MainPID,Result "$UNIT" | tr '\n' ' '; }
journal() { C journalctl -u "$UNIT" --no-pager -o short-monotonic "$@"; }
wait_active() { # wait_active SECONDS: until the unit is active/running (Type=notify: READY=1 seen)
  for _ in $(seq 1 $(($1 * 2))); do
    [ "$(show ActiveState)/$(show SubState)" = active/running ] && return 0
    # Given up (the start limit): no use waiting.
    [ "$(show ActiveState)" = failed ] && [ "$(show NRestarts)" -ge "$(show StartLimitBurst)" ] && return 1
    sleep 0.5
  done
  return 1
}

finish() {
  if [ "${CGW_HOLD:-0}" = 1 ]; then
    log "holding the container for a look: nsenter -t $LEADER -a bash; then touch $WORK/release"
    while [ ! -e "$WORK/release" ]; do sleep 1; done
  fi
  if [ "$FAIL" -gt 0 ]; then
    log "unit journal (last 40 lines):"
    journal -n 40 | sed 's/^/    /'
  fi
  log "total $(($(date +%s) - T0)) s"
  echo "$PASS passed, $FAIL failed"
  for f in "${FAILED[@]}"; do echo "  failed: $f"; done
  [ "$FAIL" -eq 0 ]
  exit
}

[ "$rc" = 0 ] || finish

# --- READY=1 ------------------------------------------------------------------------------------------
wait_active 120
check "READY=1 reached systemd (Type=notify unit active/running)" "$(props)status: $(show StatusText)" \
  test "$(show ActiveState)/$(show SubState)" = active/running
# Nothing below can be shown without a running daemon.
[ "$(show ActiveState)" = active ] || finish

# --- watchdog pings -------------------------------------------------------------------------------------
w0=$(show WatchdogTimestampMonotonic)
n0=$(show NRestarts)
w1=$w0
for _ in $(seq 1 $((WATCHDOG_WAIT * 2))); do
  w1=$(show WatchdogTimestampMonotonic)
  [ "$w1" != "$w0" ] && [ "$w1" != 0 ] && break
  sleep 0.5
done
check "watchdog pings reach systemd (WatchdogTimestamp advances)" \
  "WatchdogUSec=$(show WatchdogUSec), $w0 -> $w1 us" test "$w1" != "$w0" -a "$w1" != 0
check "no watchdog timeout and no restart while it runs" "NRestarts=$(show NRestarts)" \
  test "$(show NRestarts)" = "$n0" -a -z "$(journal | grep -i 'watchdog timeout')"

# --- the sandbox --------------------------------------------------------------------------------------------
PID=$(show MainPID)
as_service() { C nsenter -t "$PID" -m -- setpriv --reuid="$NAME" --regid="$NAME" --init-groups -- sh -c "$1"; }
in_sandbox() { C nsenter -t "$PID" -m -- sh -c "$1"; }
owner=$(C stat -c %U /var/lib/$NAME/gateway.db 2>/dev/null)
check "the daemon wrote its state directory" "/var/lib/$NAME/gateway.db owned by '$owner'" test "$owner" = "$NAME"
out=$(as_service "echo probe > /var/lib/$NAME/.probe && rm /var/lib/$NAME/.probe && echo written" 2>&1)
check "the service user can write /var/lib/$NAME in the daemon's mount namespace" "$out" test "$out" = written
out=$(as_service "echo probe > /etc/$NAME/.probe && rm /etc/$NAME/.probe && echo written" 2>&1)
check "the service user can write /etc/$NAME (config apply) in the daemon's mount namespace" "$out" test "$out" = written
# Root in the daemon's namespace: only a read-only mount refuses root, so this shows the sandbox.
out=$(in_sandbox "touch /usr/.cgw-probe" 2>&1)
check "a write to /usr in the daemon's mount namespace is refused, even for root" "$out" \
  grep -q 'Read-only file system' <<<"$out"
out=$(C sh -c 'touch /usr/.cgw-probe && rm /usr/.cgw-probe && echo written' 2>&1)
check "control: the same write outside the sandbox works" "$out" test "$out" = written
usr_opts=$(C awk '$5 == "/usr" || $5 == "/" { print $5 " " $6 }' "/proc/$PID/mountinfo" | tr '\n' ';')
check "/proc/MAINPID/mountinfo shows / read-only" "$usr_opts" grep -q '^/ ro' <<<"$usr_opts"
out=$(as_service "touch /usr/.cgw-probe" 2>&1)
check "a write to /usr as the service user is refused" "$out" test -n "$out"

# The serial port: the daemon opened it and spoke Modbus RTU through it to the pymodbus device.
fds=$(C ls -l "/proc/$PID/fd" 2>/dev/null | grep -c ttyGW0)
reqs=0
for _ in $(seq 1 30); do
  reqs=$(grep -c '^REQ 2 ' "$WORK/modbus.log")
  [ "$reqs" -gt 0 ] && break
  sleep 0.5
done
check "the daemon opened the serial port given to it and polled the device on it" \
  "$(C ls -l /dev/ttyGW0 | awk '{ print $1, $4 }'), $fds fd(s) on /dev/ttyGW0, $reqs request(s) at pymodbus" \
  test "$fds" -ge 1 -a "$reqs" -gt 0
# The device filter. A pty does not show it: DevicePolicy=closed itself lets every pty through
# (char-pts). So: the unit's own DevicePolicy= and DeviceAllow= list (systemctl show) on a
# transient unit as the service user in dialout, against two real 8250 UART nodes made in the
# container with the group and mode the udev rule gives: /dev/ttyS0 (4:64, in the list) must
# open, /dev/ttyS1 (4:65, not in the list) must fail with EPERM, where it fails with ENXIO (no
# such UART) without the filter. Opened non-blocking without a controlling tty, and closed.
C sh -c 'mknod -m 0660 /dev/ttyS0 c 4 64 && mknod -m 0660 /dev/ttyS1 c 4 65 && chgrp dialout /dev/ttyS0 /dev/ttyS1'
dev_props=(-p "DevicePolicy=$(show DevicePolicy)")
while IFS= read -r a; do [ -n "$a" ] && dev_props+=(-p "DeviceAllow=$a"); done < <(C systemctl show -p DeviceAllow "$UNIT" | sed -n 's/^DeviceAllow=//p')
OPEN='for (const f of process.argv.slice(1)) { try { fs.closeSync(fs.openSync(f, fs.constants.O_RDWR | fs.constants.O_NOCTTY | fs.constants.O_NONBLOCK)); console.log(f + " opened"); } catch (e) { console.log(f + " " + e.code); } }'
probe() { C systemd-run --quiet --wait --pipe -p User=$NAME -p SupplementaryGroups=dialout "$@" -- /usr/bin/node -e "$OPEN" /dev/ttyS0 /dev/ttyS1 2>&1 | tr '\n' ' '; }
with=$(probe "${dev_props[@]}")
without=$(probe)
check "the unit's DeviceAllow= lets a listed tty through and refuses an unlisted one" \
  "${dev_props[*]}: $with; without the filter: $without" \
  grep -q '/dev/ttyS0 opened /dev/ttyS1 EPERM' <<<"$with"
check "control: without the filter the unlisted tty fails otherwise (no such UART)" "$without" \
  grep -q '/dev/ttyS1 ENXIO' <<<"$without"

# --- kill -9 --------------------------------------------------------------------------------------------
n0=$(show NRestarts)
p0=$(show MainPID)
t=$(date +%s)
C sh -c "kill -KILL $p0"
restarted() { # restarted N0 P0 SECONDS: NRestarts grew, a new MainPID, active again
  for _ in $(seq 1 $(($3 * 2))); do
    local n p
    n=$(show NRestarts)
    p=$(show MainPID)
    if [ "$n" -gt "$1" ] && [ "$p" != 0 ] && [ "$p" != "$2" ] && [ "$(show ActiveState)/$(show SubState)" = active/running ]; then
      return 0
    fi
    sleep 0.5
  done
  return 1
}
restarted "$n0" "$p0" 60
rc=$?
check "kill -9 of the main PID is restarted" \
  "MainPID $p0 -> $(show MainPID), NRestarts $n0 -> $(show NRestarts), active again after $(($(date +%s) - t)) s" \
  test "$rc" = 0

# --- SIGSTOP longer than WatchdogSec ---------------------------------------------------------------------------
n0=$(show NRestarts)
p0=$(show MainPID)
t=$(date +%s)
C sh -c "kill -STOP $p0"
restarted "$n0" "$p0" 120
rc=$?
el=$(($(date +%s) - t))
wd=$(journal --since "@$((t - 1))" | grep -i -m1 'watchdog timeout' | sed 's/^.*: //')
how=$(journal --since "@$((t - 1))" | grep -m1 -o 'Main process exited, .*')
check "SIGSTOP > WatchdogSec: the watchdog kills it and it is restarted" \
  "MainPID $p0 -> $(show MainPID), NRestarts $n0 -> $(show NRestarts), active again after $el s; journal: ${wd:-no watchdog line} ${how}" \
  test -n "$wd" -a "$rc" = 0

# --- site profiles: kept by a re-install, read under the sandbox -------------------------------------------
# The technician puts a profile of their own into /etc/community-gateway/drivers (root's, 0644, as
# sudo cp makes it) and a device of it into the config; install.sh runs again (an upgrade): the
# file stays, and the restarted daemon, as the service user under the unit's sandbox, loads it
# and polls unit 3 with it.
C install -m 0644 /root/acme-cr10.yaml /etc/$NAME/drivers/acme-cr10.yaml
C sh -c "echo '  - { id: cold-1, facility: canteen, profile: acme-cr10, bus: rs485, unitId: 3, pollMs: 1000 }' >> /etc/$NAME/config.yaml"
C bash /root/cgw-src/systemd/install.sh --source /root/cgw-src --no-npm >"$WORK/install2.log" 2>&1
rc=$?
kept=$(grep -o 'kept *\/etc\/community-gateway\/drivers\/.*' "$WORK/install2.log")
same=no
cmp -s "$REPO/test/fixtures/site-drivers/acme-cr10.yaml" "$ROOT/etc/$NAME/drivers/acme-cr10.yaml" && same=yes
check "a re-install keeps the site profile in /etc/$NAME/drivers" \
  "exit $rc; ${kept:-no 'kept' line}; unchanged: $same; folder $(C stat -c '%U:%G %a' /etc/$NAME/drivers 2>&1)" \
  test "$rc" = 0 -a -n "$kept" -a "$same" = yes
# The page's profile upload and a remote bundle's profiles are written by the daemon: as the
# service user, under the unit's own ProtectSystem=strict with its ConfigurationDirectory.
w=$(C systemd-run --quiet --wait --pipe -p User=$NAME -p Group=$NAME -p ProtectSystem=strict -p ConfigurationDirectory=$NAME \
  sh -c "printf 'id: probe\n' > /etc/$NAME/drivers/.probe && rm /etc/$NAME/drivers/.probe && echo written" 2>&1)
check "the service, in its sandbox, may store a site profile in /etc/$NAME/drivers" \
  "${w:-nothing}; folder $(C stat -c '%U:%G %a' /etc/$NAME/drivers 2>&1)" test "$w" = written
t=$(date +%s)
C systemctl restart "$UNIT"
wait_active 60
site_reqs=0
for _ in $(seq 1 30); do
  site_reqs=$(grep -c '^REQ 3 ' "$WORK/modbus.log")
  [ "$site_reqs" -gt 0 ] && break
  sleep 0.5
done
loaded=$(journal --since "@$((t - 1))" | grep -o '"siteProfiles":\[[^]]*\]' | tail -1)
check "the sandboxed daemon loads the site profile and polls its device" "${loaded:-no siteProfiles in the journal}, $site_reqs request(s) to unit 3 at pymodbus, $(props)" \
  test "$loaded" = '"siteProfiles":["acme-cr10"]' -a "$site_reqs" -gt 0 -a "$(show ActiveState)" = active
# Under the unit stdout is journald's stream socket, not a TTY: the daemon's own lines stay JSON
# (src/log.ts picks readable lines only on a terminal), the page's address among them.
own=$(journal --since "@$((t - 1))" -o cat _PID="$(show MainPID)" || true)
webline=$(printf '%s\n' "$own" | grep -m1 -o '"msg":"web page: [^"]*"' || true)
notjson=$(printf '%s\n' "$own" | grep -cv '^{' || true)
check "the service logs JSON lines to the journal, the page's address among them" "${webline:-no web page line}; $notjson non-JSON line(s) of $(printf '%s\n' "$own" | wc -l)" \
  test -n "$webline" -a "$notjson" = 0

# --- a clean stop ---------------------------------------------------------------------------------------------
# SIGTERM (KillSignal=) must end the daemon by itself, before TimeoutStopSec= would SIGKILL it.
t=$(date +%s)
C systemctl stop "$UNIT"
el=$(($(date +%s) - t))
res=$(C systemctl show -p Result,ExecMainCode,ExecMainStatus "$UNIT" | tr '\n' ' ')
killed=$(journal --since "@$((t - 1))" | grep -E -m1 'timed out|SIGKILL' | sed 's/^.*: //')
check "systemctl stop ends it with SIGTERM alone" "$res in $el s, TimeoutStopSec=$(show TimeoutStopUSec)${killed:+; journal: $killed}" \
  test -z "$killed" -a "$(show Result)" = success
C systemctl start "$UNIT"

# --- systemd-analyze security --------------------------------------------------------------------------------
sec=$(C systemd-analyze security --no-pager "$UNIT" 2>&1)
score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$sec")
check "systemd-analyze security $UNIT scores at most 3.0" "measured ${score:-none}" \
  awk -v s="${score:-99}" 'BEGIN { exit !(s <= 3.0) }'
[ -n "$score" ] || echo "$sec" | tail -5
finish
