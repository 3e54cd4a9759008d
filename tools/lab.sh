#!/usr/bin/env bash
# The seed topology on one machine: network namespaces + veth pairs, popgo on DeviceC.
#
#   DeviceD (source)  d0 ==veth== c-to-d  DeviceC (popgo run)  c-to-a ==veth== a0  DeviceA (sink)
#                                                              c-to-b ==veth== b0  DeviceB (sink)
#
# Usage (root):
#   tools/lab.sh up      create the namespaces (names: pglab-{D,C,A,B}-$LAB_ID, LAB_ID defaults to "1")
#   tools/lab.sh down    delete them (and any XDP program left on their veths)
#   tools/lab.sh demo    build a private lab (unique names, cleaned up on exit), send the seed
#                        pcap's labeled traffic from D through popgo on C, show what A and B got:
#                        once with POPGO (pop_go = true) and once without (pop_go = false).
#   tools/lab.sh l3vpn-demo  the same for the L3VPN egress (examples/l3vpn-lab.toml): vpna's CEs
#                        behind A, vpnb's behind B, pcaps/l3vpn.pcap (transport label 18 over
#                        the VPN labels) from D; once with pop-go in both instances, once with
#                        it off in vpna only (its 10.1.1.1-2 then go to vpna's /30 CE).
#
# Addresses on the veths are from 198.18.0.0/15 (RFC 2544) only; the namespaces have no
# default route, so no traffic leaves the pairs. Env: POPGO, POPGO_LAB (binaries;
# default target/release/...), MAX_SECS (whole-run bound, default 120).
set -euo pipefail

MAX_SECS=${MAX_SECS:-120}
if [[ -z "${LAB_UNDER_TIMEOUT:-}" ]]; then
    exec timeout -k 5 "$MAX_SECS" env LAB_UNDER_TIMEOUT=1 "$0" "$@"
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
POPGO=${POPGO:-$TARGET/release/popgo}
POPGO_LAB=${POPGO_LAB:-$TARGET/release/popgo-lab}
CMD=${1:-}

# MACs match pcaps/seed.toml: C's ports and the neighbours (A, B) and D.
MAC_CA=02:00:00:00:0c:0a MAC_CB=02:00:00:00:0c:0b MAC_CD=02:00:00:00:0c:0d
MAC_A=02:00:00:00:00:0a MAC_B=02:00:00:00:00:0b MAC_D=02:00:00:00:00:0d

log() { echo "[lab $(date +%T)] $*" >&2; }

names() { # names ID
    NS_D=pglab-D-$1 NS_C=pglab-C-$1 NS_A=pglab-A-$1 NS_B=pglab-B-$1
}

lab_up() {
    local ns
    for ns in "$NS_D" "$NS_C" "$NS_A" "$NS_B"; do
        ip netns add "$ns"
        ip -n "$ns" link set lo up
    done
    ip -n "$NS_D" link add d0 address $MAC_D type veth peer name c-to-d netns "$NS_C" address $MAC_CD
    ip -n "$NS_C" link add c-to-a address $MAC_CA type veth peer name a0 netns "$NS_A" address $MAC_A
    ip -n "$NS_C" link add c-to-b address $MAC_CB type veth peer name b0 netns "$NS_B" address $MAC_B
    ip -n "$NS_D" addr add 198.18.0.1/30 dev d0
    ip -n "$NS_C" addr add 198.18.0.2/30 dev c-to-d
    ip -n "$NS_C" addr add 198.18.0.5/30 dev c-to-a
    ip -n "$NS_A" addr add 198.18.0.6/30 dev a0
    ip -n "$NS_C" addr add 198.18.0.9/30 dev c-to-b
    ip -n "$NS_B" addr add 198.18.0.10/30 dev b0
    local x
    for x in "$NS_D d0" "$NS_C c-to-d" "$NS_C c-to-a" "$NS_C c-to-b" "$NS_A a0" "$NS_B b0"; do
        set -- $x
        # No IPv6 chatter (RS/ND/MLD) in the captures.
        ip netns exec "$1" sysctl -qw "net.ipv6.conf.$2.disable_ipv6=1"
        ip -n "$1" link set "$2" up
    done
    # Frames popgo run --offload xdp redirects into c-to-a/c-to-b reach a0/b0 only when
    # those run NAPI (XDP or GRO): veth_xdp_xmit refuses them otherwise.
    if command -v ethtool >/dev/null; then
        ip netns exec "$NS_A" ethtool -K a0 gro on
        ip netns exec "$NS_B" ethtool -K b0 gro on
    fi
    log "namespaces $NS_D $NS_C $NS_A $NS_B are up"
}

lab_down() {
    local ns dev
    for ns in "$NS_D" "$NS_C" "$NS_A" "$NS_B"; do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
        for dev in d0 c-to-d c-to-a c-to-b a0 b0; do
            ip -n "$ns" link set dev "$dev" xdp off 2>/dev/null || true
        done
        ip netns del "$ns" 2>/dev/null || true
    done
}

# The seed config with the lab's interface names (and pop_go as asked); in the L3VPN
# demo, examples/l3vpn-lab.toml with vpna's pop_go as asked.
lab_config() { # lab_config OUT POPGO(true|false)
    if [[ -n "${L3VPN:-}" ]]; then
        sed -e "0,/^pop_go = true/s//pop_go = $2/" "$ROOT/examples/l3vpn-lab.toml" >"$1"
        return
    fi
    sed -e 's/"vethA"/"c-to-a"/; s/"vethB"/"c-to-b"/; s/"vethD"/"c-to-d"/' \
        -e "s/^pop_go = true/pop_go = $2/" "$ROOT/pcaps/seed.toml" >"$1"
}

wait_for() { # wait_for FILE PATTERN SECS
    local i
    for ((i = 0; i < $3 * 10; i++)); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    log "timeout waiting for '$2' in $1"; cat "$1" >&2; return 1
}

show_sink() { # show_sink NAME PCAP
    local n
    n=$(tcpdump -r "$2" -nn 2>/dev/null | wc -l)
    echo "  $1 received $n frame(s):"
    tcpdump -r "$2" -nn -e 2>/dev/null | sed -E 's/^[0-9:.]+ /    /' | cut -c1-150
}

demo_variant() { # demo_variant LABEL POPGO(true|false)
    local cfg=$TMP/$2.toml
    lab_config "$cfg" "$2"
    echo
    echo "=== $1: pop_go = $2 ==="
    ip netns exec "$NS_A" timeout 20 tcpdump -U -n -i a0 -w "$TMP/A-$2.pcap" 'ip and net 10.1.1.0/24' 2>"$TMP/tdA-$2.log" &
    local tda=$!
    ip netns exec "$NS_B" timeout 20 tcpdump -U -n -i b0 -w "$TMP/B-$2.pcap" 'ip and net 10.1.1.0/24' 2>"$TMP/tdB-$2.log" &
    local tdb=$!
    wait_for "$TMP/tdA-$2.log" "listening" 5
    wait_for "$TMP/tdB-$2.log" "listening" 5
    ip netns exec "$NS_C" timeout -s INT 20 "$POPGO" run --config "$cfg" --stats-interval 0 --duration 15 \
        >"$TMP/popgo-$2.out" 2>"$TMP/popgo-$2.err" &
    local pg=$!
    wait_for "$TMP/popgo-$2.err" "forwarding" 10
    grep -E "port|XDP" "$TMP/popgo-$2.err" | sed 's/^/  /'
    ip netns exec "$NS_D" timeout 20 "$POPGO_LAB" send --iface d0 --gap-us 1000 "$PCAP"
    sleep 1
    kill -TERM "$(pgrep -P $pg)" 2>/dev/null || true
    wait $pg || true
    sleep 0.5
    kill -INT $tda $tdb 2>/dev/null || true
    wait $tda $tdb 2>/dev/null || true
    show_sink "DeviceA (a0)" "$TMP/A-$2.pcap"
    show_sink "DeviceB (b0)" "$TMP/B-$2.pcap"
    echo "  popgo final report on DeviceC:"
    sed 's/^/    /' "$TMP/popgo-$2.out"
    echo "  XDP programs left on DeviceC's ports: $(ip -n "$NS_C" -o link show | grep -c 'prog/xdp' || true)"
}

case "$CMD" in
up)
    names "${LAB_ID:-1}"
    lab_up
    ;;
down)
    names "${LAB_ID:-1}"
    lab_down
    log "namespaces pglab-*-${LAB_ID:-1} removed"
    ;;
demo | l3vpn-demo)
    [[ -x "$POPGO" && -x "$POPGO_LAB" ]] || { echo "build first: cargo build --release (missing $POPGO or $POPGO_LAB)" >&2; exit 2; }
    command -v tcpdump >/dev/null || { echo "tcpdump is needed (apt-get install tcpdump)" >&2; exit 2; }
    names "demo$$"
    TMP=$(mktemp -d /tmp/pglab.XXXXXX)
    trap 'lab_down; rm -rf "$TMP"; log "cleaned up"' EXIT
    trap 'exit 130' INT TERM
    lab_up
    PCAP=$ROOT/pcaps/seed.pcap
    if [[ "$CMD" == l3vpn-demo ]]; then
        L3VPN=1 PCAP=$ROOT/pcaps/l3vpn.pcap
        echo "L3VPN traffic ($("$POPGO" gen l3vpn --out "$TMP/l3vpn.pcap" --describe | tail -n +2 | grep -c .) frames):"
        "$POPGO" gen l3vpn --out "$TMP/l3vpn.pcap" --describe | tail -n +2 | sed 's/^/  /'
        demo_variant "pop-go in both instances: each instance's 10.1.1.x goes to its CE A" true
        demo_variant "pop-go off in vpna: vpna's 10.1.1.1-2 go to its CE B (/30); vpnb does not move" false
        exit 0
    fi
    echo "seed traffic: $("$POPGO" gen seed --out "$TMP/seed-described.pcap" --describe | tail -n +2 | grep -c .) frames" \
        "(10.1.1.1/.2/.3/.5, tagged and untagged, plus bad frames); replay expects:"
    "$POPGO" replay --config "$ROOT/pcaps/seed.toml" "$ROOT/pcaps/seed.pcap" | grep -E "tx |dropped" | sed 's/^/  /'
    demo_variant "with POPGO (apply-label per-route pop-go): every 10.1.1.x goes to DeviceA" true
    demo_variant "without POPGO (pop + IP lookup): 10.1.1.0-3 go to DeviceB (longest match /30)" false
    ;;
*)
    echo "usage: $0 up|down|demo|l3vpn-demo" >&2
    exit 2
    ;;
esac
