#!/usr/bin/env bash
# Builds the Debian package of tollgate with dpkg-deb from the files in packaging/
# (see packaging/README.md for why dpkg-deb and not cargo-deb).
#
#   packaging/build-deb.sh [--profile release|debug] [--no-build] [--out DIR]
#
# Builds the two binaries (`cargo build --locked`; `--no-build` takes the ones in
# target/PROFILE as they are),
# generates their man pages and shell completions from the clap definitions
# (`tollgate generate-dist`), stages the tree, and writes
# DIR/tollgate_VERSION-1_ARCH.deb (DIR default: target/debian), printing its path.
# `--profile debug` packages the debug build: what tests/package.sh does, reusing the
# build tests/run.sh already made; ship the release profile.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
out=
build=1
while (($#)); do
    case "$1" in
        --profile) profile=${2:?--profile needs release or debug}; shift 2 ;;
        --out) out=${2:?--out needs a directory}; shift 2 ;;
        --no-build) build=; shift ;;
        *) echo "usage: $0 [--profile release|debug] [--no-build] [--out DIR]" >&2; exit 2 ;;
    esac
done
case "$profile" in
    release) cargo_profile=(--release) ;;
    debug) cargo_profile=() ;;
    *) echo "build-deb: unknown profile $profile (release or debug)" >&2; exit 2 ;;
esac

target_dir=${CARGO_TARGET_DIR:-$PWD/target}
out=${out:-$target_dir/debian}
if [ -n "$build" ]; then
    cargo build --locked "${cargo_profile[@]}" -p tollgate --bin tollgate -p tollgate-bench --bin tollgate-load >&2
fi
bin=$target_dir/$profile
for b in tollgate tollgate-load; do
    [ -x "$bin/$b" ] || { echo "build-deb: $bin/$b is missing (build it, or drop --no-build)" >&2; exit 1; }
done

upstream=$(sed -n '/^\[workspace.package\]/,/^\[/ s/^version = "\(.*\)"/\1/p' Cargo.toml)
version="$upstream-1"
arch=$(dpkg --print-architecture)
# Reproducible: every date in the package is the last commit's.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)

stage=$(mktemp -d /tmp/tollgate-deb.XXXXXX)
trap 'rm -rf "$stage"' EXIT
root=$stage/src/debian/tollgate
doc=$root/usr/share/doc/tollgate

# Binaries, stripped (debug information does not belong in the package).
for b in tollgate tollgate-load; do
    install -D -m 0755 "$bin/$b" "$root/usr/bin/$b"
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/$b"
done

# Man pages and completions from the clap definitions.
for b in tollgate tollgate-load; do
    "$bin/$b" generate-dist "$stage/gen/$b" >/dev/null
    for page in "$stage/gen/$b"/man/*.1; do
        install -D -m 0644 "$page" "$root/usr/share/man/man1/$(basename "$page")"
    done
    install -D -m 0644 "$stage/gen/$b/completions/bash/$b.bash" "$root/usr/share/bash-completion/completions/$b"
    install -D -m 0644 "$stage/gen/$b/completions/zsh/_$b" "$root/usr/share/zsh/vendor-completions/_$b"
    install -D -m 0644 "$stage/gen/$b/completions/fish/$b.fish" "$root/usr/share/fish/vendor_completions.d/$b.fish"
done
gzip -9n "$root"/usr/share/man/man1/*.1

# Service, configuration (conffiles), host tuning.
install -D -m 0644 packaging/tollgate.service "$root/lib/systemd/system/tollgate.service"
install -D -m 0644 packaging/tollgate.toml "$root/etc/tollgate/tollgate.toml"
install -D -m 0644 tuning/90-tollgate.conf "$root/etc/sysctl.d/90-tollgate.conf"

# Documentation, compressed as Debian policy 12.3 asks.
install -D -m 0644 README.md "$doc/README.md"
install -D -m 0644 tuning/README.md "$doc/tuning.md"
install -D -m 0644 packaging/debian/copyright "$doc/copyright"
sed -e "s/@VERSION@/$version/" -e "s/@COMMIT@/$commit/" \
    -e "s/@DATE@/$(date -u -R -d "@$SOURCE_DATE_EPOCH")/" \
    packaging/debian/changelog.in >"$doc/changelog.Debian"
chmod 0644 "$doc/changelog.Debian"
gzip -9n "$doc/README.md" "$doc/tuning.md" "$doc/changelog.Debian"

# Shared-library dependencies of the binaries, as dpkg-shlibdeps computes them
# (it wants a debian/control to read, so it runs in the scratch source tree).
printf 'Source: tollgate\n\nPackage: tollgate\nArchitecture: any\n' >"$stage/src/debian/control"
depends=$(cd "$stage/src" && dpkg-shlibdeps -O debian/tollgate/usr/bin/tollgate debian/tollgate/usr/bin/tollgate-load |
    sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "build-deb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

# Control area.
install -d -m 0755 "$root/DEBIAN"
size=$(du -k -s --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" -e "s/@DEPENDS@/$depends/" \
    packaging/debian/control.in >"$root/DEBIAN/control"
install -m 0644 packaging/debian/conffiles "$root/DEBIAN/conffiles"
for s in postinst prerm postrm; do
    install -m 0755 "packaging/debian/$s" "$root/DEBIAN/$s"
done
(cd "$root" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' |
    LC_ALL=C sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"

find "$root" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$out"
deb=$out/tollgate_${version}_$arch.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >&2
echo "$deb"
