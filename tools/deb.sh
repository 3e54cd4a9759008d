#!/usr/bin/env bash
# Builds a Debian package of popgo with dpkg-deb (no extra tools): the release
# binaries, the systemd unit, the man pages, shell completions, the examples, the
# Grafana dashboard and the Prometheus rules (with their unit tests); then
# checks the unit with `systemd-analyze verify` and lists the package.
#   tools/deb.sh [OUT_DIR]        (default: target/deb)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${CARGO_TARGET_DIR:-target}/deb}
cargo build --release --quiet --bins
BIN="${CARGO_TARGET_DIR:-target}/release"
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
ARCH=$(dpkg --print-architecture)
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
install -D -m 0755 "$BIN/popgo" "$STAGE/usr/bin/popgo"
install -D -m 0755 "$BIN/popgo-lab" "$STAGE/usr/bin/popgo-lab"
install -D -m 0644 packaging/popgo.service "$STAGE/lib/systemd/system/popgo.service"
mkdir -p "$STAGE/usr/share/man/man1" "$STAGE/usr/share/bash-completion/completions" \
  "$STAGE/usr/share/zsh/vendor-completions" "$STAGE/usr/share/doc/popgo/examples" "$STAGE/etc/popgo"
# popgo.1 and one page per command (popgo-replay.1, popgo-gen-synth.1, ...), which the
# top page's COMMANDS section names.
"$BIN/popgo" man --out-dir "$STAGE/usr/share/man/man1" >/dev/null
gzip -9n "$STAGE"/usr/share/man/man1/*.1
"$BIN/popgo" completions bash > "$STAGE/usr/share/bash-completion/completions/popgo"
"$BIN/popgo" completions zsh > "$STAGE/usr/share/zsh/vendor-completions/_popgo"
cp examples/*.toml pcaps/seed.toml "$STAGE/usr/share/doc/popgo/examples/"
install -m 0644 pcaps/seed.toml "$STAGE/etc/popgo/popgo.toml.example"
install -D -m 0644 packaging/popgo-dashboard.json "$STAGE/usr/share/popgo/grafana/popgo-dashboard.json"
install -D -m 0644 packaging/popgo.rules.yml "$STAGE/usr/share/popgo/prometheus/popgo.rules.yml"
install -D -m 0644 packaging/popgo.rules.test.yml "$STAGE/usr/share/popgo/prometheus/popgo.rules.test.yml"
mkdir -p "$STAGE/DEBIAN"
cat > "$STAGE/DEBIAN/control" <<CTL
Package: popgo
Version: $VERSION
Architecture: $ARCH
Maintainer: popgo developers <popgo@localhost>
Depends: libc6, libelf1, zlib1g
Section: net
Priority: optional
Description: poll-mode MPLS forwarder implementing POPGO (BGP LSP egress)
 A labeled packet is popped and sent straight out of the interface recorded in
 the ILM for its label (apply-label per-route pop-go), with no IP lookup.
 AF_XDP data plane, pcap replay, live VRP control socket, Prometheus metrics.
CTL
# The unit as installed, with ExecStart pointing into the staging tree (the binary is
# not installed on this machine); the man page is checked in the package listing.
mkdir -p "$STAGE.check"
sed "s|/usr/bin/popgo|$STAGE/usr/bin/popgo|" packaging/popgo.service > "$STAGE.check/popgo.service"
systemd-analyze verify --man=no "$STAGE.check/popgo.service"
rm -rf "$STAGE.check"
mkdir -p "$OUT"
DEB="$OUT/popgo_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group --build "$STAGE" "$DEB" >/dev/null
dpkg-deb --info "$DEB" | sed -n 's/^ Package: /package: /p; s/^ Version: /version: /p'
dpkg-deb --contents "$DEB" | awk '{print $6}' | grep -E 'popgo(\.service|\.1\.gz)?$|completions/popgo$|popgo-replay\.1\.gz$|popgo-dashboard\.json$|popgo\.rules\.yml$'
echo "man pages: $(dpkg-deb --contents "$DEB" | grep -c 'man/man1/popgo.*\.1\.gz$')"
# What a monitoring setup needs must be in the package, not only in the tree.
for f in usr/share/popgo/grafana/popgo-dashboard.json usr/share/popgo/prometheus/popgo.rules.yml; do
  dpkg-deb --contents "$DEB" | awk '{print $6}' | grep -qx "./$f" || { echo "deb: $f missing" >&2; exit 1; }
done
echo "deb: wrote $DEB"
