#!/usr/bin/env bash
# Builds target/debian/rxd_<version>_<arch>.deb: rxd and rxc in /usr/bin, the systemd units
# (packaging/systemd), their manual pages and bash completion, /var/lib/rxd (0711), and the
# maintainer scripts of packaging/debian; prints the package's path.
#
#   scripts/build-deb.sh                  a release build, packed (xz)
#   scripts/build-deb.sh --no-build       the release binaries already built
#   scripts/build-deb.sh --binaries DIR --out DIR --uncompressed
#                                         other binaries (the tests pack the debug build)
set -euo pipefail
cd "$(dirname "$0")/.."

build=yes
bin=target/release
out=target/debian
compress=(-Zxz)
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) build=no ;;
        --binaries) bin=$2; build=no; shift ;;
        --out) out=$2; shift ;;
        --uncompressed) compress=(-Znone) ;;
        *) echo "build-deb.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
if [ "$build" = yes ]; then
    cargo build --release -p rxd-daemon -p rxd-cli
fi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
arch=$(dpkg --print-architecture)
root=$out/rxd_${version}_${arch}
rm -rf "$root"
install -d -m 0755 "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" \
    "$root/usr/share/man/man1" "$root/usr/share/bash-completion/completions" \
    "$root/usr/share/doc/rxd"
install -d -m 0711 "$root/var/lib/rxd"
install -m 0755 "$bin/rxd" "$bin/rxc" "$root/usr/bin/"
install -m 0644 packaging/systemd/rxd.service packaging/systemd/rxd.socket "$root/lib/systemd/system/"
"$bin/rxd" manpage "$root/usr/share/man/man1"
"$bin/rxc" manpage "$root/usr/share/man/man1"
gzip -9n "$root"/usr/share/man/man1/*.1
"$bin/rxc" completion bash > "$root/usr/share/bash-completion/completions/rxc"
chmod 0644 "$root"/usr/share/bash-completion/completions/*
install -m 0644 README.md "$root/usr/share/doc/rxd/README.md"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$root/DEBIAN/"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: rxd
Version: $version
Architecture: $arch
Maintainer: rxd developers <rxd@localhost>
Installed-Size: $size
Depends: libc6 (>= 2.34), dnsmasq-base, nftables, iproute2, adduser
Recommends: btrfs-progs
Section: admin
Priority: optional
Description: LXD-compatible clustering daemon and client
 rxd forms and runs clusters of container hosts that LXD's clients (lxc, lxd init,
 pylxd) drive unchanged: a replicated cluster database, token and trust-password
 joins, one-command formation (rxd form / rxd join), storage pools, networks and
 profiles across members, and Prometheus metrics.
CONTROL
dpkg-deb --root-owner-group "${compress[@]}" --build "$root" "$out/rxd_${version}_${arch}.deb" >/dev/null
echo "$out/rxd_${version}_${arch}.deb"
