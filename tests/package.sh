#!/usr/bin/env bash
# The Debian package end to end, on this machine (as root): build it from the
# debug binaries tests/run.sh already built, lintian (errors fail), dpkg -i,
# systemd-analyze verify, `tollgate check` on the installed default config, the
# installed binary run as the `tollgate` user the way the unit runs it until
# /readyz answers (then SIGHUP reload, SIGTERM drain), dpkg --remove keeps
# the configuration, dpkg --purge leaves nothing behind.
# Ends with a `test result:` line that tests/run.sh totals.
set -euo pipefail
cd "$(dirname "$0")/.."

passed=0
ok() { passed=$((passed + 1)); echo "package: ok - $*"; }
fail() { echo "package: FAILED - $*" >&2; echo "test result: FAILED. $passed passed; 1 failed (tests/package.sh)"; exit 1; }

[ "$(id -u)" = 0 ] || fail "must run as root (dpkg -i, a system user)"
if dpkg-query -W -f='${Status}' tollgate 2>/dev/null | grep -q 'install ok\|config-files'; then
    fail "a tollgate package is already on this machine; this test installs and purges its own (dpkg --purge tollgate first)"
fi
admin=127.0.0.1:9090 # the default config's admin address
if (exec 3<>/dev/tcp/127.0.0.1/9090) 2>/dev/null; then
    fail "something already listens on $admin, where the installed default config puts the admin API"
fi

work=$(mktemp -d /tmp/tollgate-pkgtest.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
    dpkg --purge tollgate >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

# 1. Build (debug profile: the package's layout and scripts are what is tested here,
#    and a release build would add ~15 minutes on 2 cores; see packaging/README.md).
#    The same build command as tests/run.sh (a no-op after it): building only the two
#    binaries would unify features differently and rebuild the whole debug chain.
cargo build --workspace --all-targets --locked >&2
deb=$(packaging/build-deb.sh --profile debug --no-build --out "$work")
[ -f "$deb" ] || fail "build-deb.sh wrote no package"
ok "built $(basename "$deb") ($(du -h "$deb" | cut -f1))"

# 2. lintian: no errors; warnings are printed for the record.
lintian --fail-on error --tag-display-limit 0 "$deb" | tee "$work/lintian.txt" || fail "lintian reports errors"
ok "lintian: no errors ($(grep -c '^W:' "$work/lintian.txt" || true) warnings)"

# 3. Install.
dpkg -i "$deb" >/dev/null || fail "dpkg -i"
files=$(dpkg -L tollgate)
for f in /usr/bin/tollgate /usr/bin/tollgate-load /lib/systemd/system/tollgate.service \
    /etc/tollgate/tollgate.toml /etc/sysctl.d/90-tollgate.conf \
    /usr/share/doc/tollgate/{README.md.gz,tuning.md.gz,copyright,changelog.Debian.gz} \
    /usr/share/man/man1/{tollgate.1.gz,tollgate-run.1.gz,tollgate-check.1.gz,tollgate-load.1.gz} \
    /usr/share/bash-completion/completions/{tollgate,tollgate-load} \
    /usr/share/zsh/vendor-completions/{_tollgate,_tollgate-load} \
    /usr/share/fish/vendor_completions.d/{tollgate,tollgate-load}.fish; do
    grep -qxF "$f" <<<"$files" && [ -e "$f" ] || fail "$f not installed"
done
conffiles=$(dpkg-query -W -f='${Conffiles}' tollgate)
for f in /etc/tollgate/tollgate.toml /etc/sysctl.d/90-tollgate.conf; do
    grep -q " $f " <<<"$conffiles" || fail "$f is not a conffile"
done
getent passwd tollgate | grep -q ':/var/lib/tollgate:/usr/sbin/nologin$' || fail "no tollgate system user"
[ "$(stat -c '%U:%G %a' /var/lib/tollgate)" = "tollgate:tollgate 750" ] || fail "/var/lib/tollgate: $(stat -c '%U:%G %a' /var/lib/tollgate)"
[ "$(stat -c '%U:%G %a' /etc/tollgate/tollgate.toml)" = "root:tollgate 640" ] || fail "config permissions"
zcat /usr/share/man/man1/tollgate.1.gz | grep -q 'tollgate\\-check' || fail "man page lacks the subcommands"
grep -q 'generate-dist' /usr/share/bash-completion/completions/tollgate && fail "hidden generator in completions"
ok "dpkg -i: binaries, unit, conffiles, docs, man pages, completions, user, /var/lib/tollgate"

# 4. The unit as systemd reads it.
systemd-analyze verify /lib/systemd/system/tollgate.service 2>&1 | tee "$work/verify.txt" || fail "systemd-analyze verify"
[ ! -s "$work/verify.txt" ] || fail "systemd-analyze verify printed warnings"
grep -qx 'Type=notify' /lib/systemd/system/tollgate.service || fail "unit is not Type=notify"
ok "systemd-analyze verify: clean"

# 5. The unit's ExecStartPre on the installed default config, as the service user.
runuser -u tollgate -- /usr/bin/tollgate check --config /etc/tollgate/tollgate.toml >"$work/check.txt" 2>&1 ||
    { cat "$work/check.txt"; fail "tollgate check rejects the installed default config"; }
ok "tollgate check accepts the installed config: $(grep -c . "$work/check.txt") lines"

# 6. Run as the unit would: user and group tollgate, no new privileges, the unit's
#    environment and ExecStart, with a notify socket like systemd's.
notify=$work/notify
"${TOLLGATE_PYTHON:-python3}" - "$notify" >"$work/notify.txt" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(60)
while True:  # until STOPPING=1 or a minute of silence
    m = s.recv(4096).decode()
    print(m.replace("\n", " "), flush=True)
    if "STOPPING=1" in m:
        break
PY
listener=$!
for _ in $(seq 100); do [ -S "$notify" ] && break; sleep 0.05; done
chmod 0777 "$work" "$notify"
TOLLGATE_CONFIG=/etc/tollgate/tollgate.toml NOTIFY_SOCKET=$notify \
    setpriv --reuid=tollgate --regid=tollgate --init-groups --no-new-privs -- \
    /usr/bin/tollgate run --config /etc/tollgate/tollgate.toml --log-format json 2>"$work/run.log" &
pid=$!
code=
for _ in $(seq 300); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://$admin/readyz" || true)
    [ "$code" = 200 ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/run.log"; fail "the installed gateway exited"; }
    sleep 0.1
done
[ "$code" = 200 ] || { cat "$work/run.log"; fail "/readyz never answered 200 (last: $code)"; }
# READY=1 goes out as /readyz turns 200; the listener may print it a moment later
# on a loaded machine, so wait for the line rather than read the file once.
for _ in $(seq 300); do grep -q 'READY=1' "$work/notify.txt" && break; sleep 0.1; done
grep -q 'READY=1' "$work/notify.txt" || fail "no READY=1 on the notify socket"
[ "$(stat -c %U /var/lib/tollgate/recordings)" = tollgate ] || fail "recordings not written by the service user"
ok "installed binary as user tollgate: /readyz 200, READY=1 sent"

kill -HUP "$pid"
for _ in $(seq 300); do grep -q 'configuration reloaded (SIGHUP)' "$work/run.log" && break; sleep 0.1; done
grep -q 'configuration reloaded (SIGHUP)' "$work/run.log" || { cat "$work/run.log"; fail "SIGHUP did not reload"; }
kill -TERM "$pid"
for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "the gateway did not stop on SIGTERM"
wait "$pid" || fail "the gateway exited non-zero on SIGTERM"
pid=
wait "$listener" || true
grep -q 'RELOADING=1' "$work/notify.txt" && grep -q 'STOPPING=1' "$work/notify.txt" ||
    { cat "$work/notify.txt"; fail "RELOADING=1 / STOPPING=1 missing"; }
ok "SIGHUP reloads (RELOADING=1), SIGTERM drains (STOPPING=1) and exits 0"

# 7. remove keeps configuration and data; purge leaves nothing.
dpkg --remove tollgate >/dev/null || fail "dpkg --remove"
[ -f /etc/tollgate/tollgate.toml ] && [ -d /var/lib/tollgate ] || fail "remove took the configuration or data"
[ ! -e /usr/bin/tollgate ] || fail "remove left the binary"
ok "dpkg --remove: binaries gone, configuration and data kept"
dpkg --purge tollgate >/dev/null || fail "dpkg --purge"
left=
# Directories in the file list are shared with other packages (/usr/bin, /lib/systemd/system...);
# the package's own are checked by name below.
while read -r f; do
    [ -d "$f" ] && continue
    [ -e "$f" ] && left="$left $f"
done <<<"$files"
for f in /var/lib/tollgate /etc/tollgate /etc/sysctl.d/90-tollgate.conf /usr/share/doc/tollgate; do
    [ -e "$f" ] && left="$left $f"
done
getent passwd tollgate >/dev/null && left="$left user:tollgate"
getent group tollgate >/dev/null && left="$left group:tollgate"
dpkg-query -W tollgate >/dev/null 2>&1 && left="$left dpkg-status"
[ -z "$left" ] || fail "purge left:$left"
ok "dpkg --purge: no files, user, group, /etc/tollgate or /var/lib/tollgate left"

echo "test result: ok. $passed passed; 0 failed (tests/package.sh)"
