#!/usr/bin/env bash
# popgo run (AF_XDP, and with --offload xdp) vs DPDK testpmd and vs the kernel's own XDP
# forwarding, on the veth lab, same generator, same core placement.
#
#   [pgvs-S] s0 ==veth== fa [pgvs-F: forwarder] fb ==veth== k0 [pgvs-K: sink]
#
# Generator: `popgo-lab gen` (60 B frames = 64 B on the wire, MPLS label 48122 bottom of
# stack over IPv4/UDP 198.18.1.1 -> 198.19.1.x) on CPU $GEN_CPU. GEN_MODE=live (default):
# the kernel's XDP live-frames mode (BPF_PROG_TEST_RUN of an XDP_TX program, several
# Mpps); GEN_MODE=afxdp: a copy-mode AF_XDP socket (about 1-2 Mpps here, which caps the
# in-kernel phases at the generator).
# Forwarders, on CPU $FWD_CPU (one forwarding core each):
#   popgo   : popgo run --config (seed.toml with to-D = fa, to-A = fb, to-B unattached);
#             label 48122 is POPGO to to-A, so every frame is popped and sent out of fb.
#   offload : the same with --offload xdp: the XDP program on fa pops, rewrites and
#             redirects into fb itself (the workers get only what it does not take).
#   kernel  : `popgo-lab redirect`: an XDP program on fa that rewrites both MACs and
#             redirects every frame into fb through a devmap: in-kernel forwarding with
#             no lookup, the reference for the offload.
#   testpmd : dpdk-testpmd, two net_af_xdp vdevs (fa, fb), --forward-mode=io, 1 core
#             (main lcore on $GEN_CPU, sleeping; forwarding lcore on $FWD_CPU).
# On veth, the XDP program of fa runs in the softirq of the CPU that sent into s0, i.e.
# on the generator's CPU: offload and kernel use no forwarder CPU at all.
# Sink: `popgo-lab sink` (XDP count-and-drop) on k0; the number is the median of the
# active 1-second intervals at the sink. Ceiling: generator straight into a sink on fa.
# Phases are interleaved (ceiling, then ROUNDS x "testpmd offload kernel popgo", then
# ceiling, by default) because the 2 vCPUs are shared with other work and absolute rates
# drift.
#
# Usage (root): tools/vs-testpmd.sh [PHASES...]
# Env: POPGO, POPGO_B, POPGO_LAB (binaries, default target/release/...), GEN_SECS (8), GEN_CPU (0),
#      FWD_CPU (1), POPGO_EXTRA (extra `popgo run` flags), TESTPMD_EXTRA (extra testpmd
#      application flags, e.g. --rxd=4096), GEN_EXTRA, GEN_MODE (live), ROUNDS (3),
#      MAX_SECS (600), LAB_TAG (in the namespace names).
# Phase `testpmdb`: testpmd with TESTPMD_EXTRA_B instead of TESTPMD_EXTRA.
# Phase `popgob`: popgo run with POPGO_EXTRA_B instead of POPGO_EXTRA, and the binary
# POPGO_B (default: POPGO), for an A/B of a flag or of two builds in one sitting (e.g.
# `tools/vs-testpmd.sh popgo popgob popgob popgo popgo popgob`).
# Needs: dpdk-testpmd (apt-get install --no-install-recommends dpdk dpdk-dev
#        librte-net-af-xdp23 librte-mempool-ring23); without it the testpmd phases are skipped.
set -euo pipefail

MAX_SECS=${MAX_SECS:-600}
if [[ -z "${LAB_UNDER_TIMEOUT:-}" ]]; then
    exec timeout -k 10 "$MAX_SECS" env LAB_UNDER_TIMEOUT=1 "$0" "$@"
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
POPGO=${POPGO:-$TARGET/release/popgo}
POPGO_LAB=${POPGO_LAB:-$TARGET/release/popgo-lab}
ROUNDS=${ROUNDS:-3}
DEFAULT_PHASES="ceiling"
for ((r = 0; r < ROUNDS; r++)); do DEFAULT_PHASES+=" testpmd offload kernel popgo"; done
PHASES=${*:-$DEFAULT_PHASES ceiling}
GEN_SECS=${GEN_SECS:-8}
GEN_CPU=${GEN_CPU:-0}
FWD_CPU=${FWD_CPU:-1}
read -r -a POPGO_ARGS <<<"${POPGO_EXTRA:-}"
read -r -a POPGO_ARGS_B <<<"${POPGO_EXTRA_B:-}"
read -r -a GEN_ARGS <<<"${GEN_EXTRA:-}"
read -r -a TESTPMD_ARGS <<<"${TESTPMD_EXTRA:-}"
read -r -a TESTPMD_ARGS_B <<<"${TESTPMD_EXTRA_B:-}"
GEN_MODE=${GEN_MODE:-live}
[[ "$GEN_MODE" == live ]] && GEN_ARGS+=(--live)

# LAB_TAG (optional) goes into the namespace names, beside the pid.
ID=${LAB_TAG:+$LAB_TAG-}$$
NS_S=pgvs-S-$ID NS_F=pgvs-F-$ID NS_K=pgvs-K-$ID
MAC_S0=02:00:00:00:00:0d MAC_FA=02:00:00:00:0c:0d MAC_FB=02:00:00:00:0c:0a MAC_K0=02:00:00:00:00:0a
LOG=$(mktemp -d /tmp/pgvs.XXXXXX)
PIDS=()
RESULTS=()

log() { echo "[vs $(date +%T)] $*"; }

cleanup() {
    local rc=$? p ns
    set +e
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    sleep 1
    for ns in "$NS_S" "$NS_F" "$NS_K"; do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
        ip -n "$ns" -o link show 2>/dev/null | grep -o '^[0-9]*: [a-z0-9]*' | awk '{print $2}' |
            while read -r d; do ip -n "$ns" link set dev "$d" xdp off 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
    log "cleaned up (logs in $LOG), exit $rc"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ -x "$POPGO" && -x "$POPGO_LAB" ]] || { echo "build first: cargo build --release" >&2; exit 2; }

for ns in "$NS_S" "$NS_F" "$NS_K"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip -n "$NS_S" link add s0 address $MAC_S0 type veth peer name fa netns "$NS_F" address $MAC_FA
ip -n "$NS_F" link add fb address $MAC_FB type veth peer name k0 netns "$NS_K" address $MAC_K0
ip -n "$NS_S" addr add 198.18.0.1/30 dev s0
ip -n "$NS_F" addr add 198.18.0.2/30 dev fa
ip -n "$NS_F" addr add 198.18.0.5/30 dev fb
ip -n "$NS_K" addr add 198.18.0.6/30 dev k0
for x in "$NS_S s0" "$NS_F fa" "$NS_F fb" "$NS_K k0"; do
    set -- $x
    ip netns exec "$1" sysctl -qw "net.ipv6.conf.$2.disable_ipv6=1"
    ip -n "$1" link set "$2" up
done
# to-D = fa (in), to-A = fb (out), to-B has no interface (not attached).
sed -e 's/"vethD"/"fa"/; s/"vethA"/"fb"/; /iface = "vethB"/d' "$ROOT/pcaps/seed.toml" >"$LOG/vs.toml"
# The generator's 198.19.1.x destinations routed via DeviceA too, so that frames the
# offload leaves to the workers (GEN_EXTRA="--label 0": IPv4 explicit null, popped and
# looked up) reach the sink as well.
printf '\n[[static_route]]\nprefix = "198.19.0.0/16"\nnext_hop = "192.168.10.1"\n' >>"$LOG/vs.toml"

run_bg() { # run_bg NAME NS SECS CMD...
    local name=$1 ns=$2 secs=$3
    shift 3
    ip netns exec "$ns" timeout -s INT -k 5 "$secs" "$@" >"$LOG/$name.log" 2>&1 &
    PIDS+=($!)
    eval "PID_$name=$!"
}

wait_for() { # wait_for FILE PATTERN SECS
    local i
    for ((i = 0; i < $3 * 10; i++)); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    log "timeout waiting for '$2' in $1"; cat "$1"; return 1
}

gen_and_measure() { # gen_and_measure TAG SINK_NS SINK_IF
    local tag=$1
    run_bg "${tag}_sink" "$2" $((GEN_SECS + 8)) "$POPGO_LAB" sink --iface "$3" --secs $((GEN_SECS + 2))
    wait_for "$LOG/${tag}_sink.log" "counting" 10
    run_bg "${tag}_gen" "$NS_S" $((GEN_SECS + 5)) "$POPGO_LAB" gen --iface s0 --dst $MAC_FA --core "$GEN_CPU" \
        --secs "$GEN_SECS" ${GEN_ARGS[@]+"${GEN_ARGS[@]}"}
    wait "$(eval echo \$PID_${tag}_gen)" || true
    wait "$(eval echo \$PID_${tag}_sink)" || true
    local gen sink
    gen=$(grep -o 'avg=[0-9.]*' "$LOG/${tag}_gen.log" | cut -d= -f2)
    sink=$(grep -o 'median_active_second=[0-9.]*' "$LOG/${tag}_sink.log" | cut -d= -f2)
    echo "  generator sent ${gen:-?} Mpps (average), sink received ${sink:-?} Mpps (median active second)"
    RESULTS+=("${tag%%_*} ${sink:-0}")
}

N=0
phase_ceiling() {
    N=$((N + 1))
    log "phase ceiling: generator s0 -> sink on fa (no forwarder)"
    gen_and_measure "ceiling_$N" "$NS_F" fa
}

phase_popgo() { # phase_popgo [TAG [FLAGS...]]
    N=$((N + 1))
    local tag=${1:-popgo} bin=$POPGO
    [[ $tag == popgob ]] && bin=${POPGO_B:-$POPGO}
    [[ $# -gt 0 ]] && shift
    [[ $# -eq 0 && $tag == popgo ]] && set -- ${POPGO_ARGS[@]+"${POPGO_ARGS[@]}"}
    log "phase $tag: generator -> popgo run $* (fa -> fb, POPGO) on CPU $FWD_CPU -> sink k0"
    run_bg "${tag}_$N" "$NS_F" $((GEN_SECS + 30)) "$bin" run --config "$LOG/vs.toml" --cores "$FWD_CPU" \
        --stats-interval 1 "$@"
    wait_for "$LOG/${tag}_$N.log" "forwarding" 15
    grep "run:   port" "$LOG/${tag}_$N.log" | sed 's/^/  /' || true
    gen_and_measure "${tag}_$N" "$NS_K" k0
    kill -INT "$(eval echo \$PID_${tag}_$N)" 2>/dev/null || true
    wait "$(eval echo \$PID_${tag}_$N)" || true
    grep -E "^(rx_packets|tx_packets|dropped|rx = tx|  tx fb|  tx_ring_full|kernel)|  tx to-A" "$LOG/${tag}_$N.log" | sed "s/^/  $tag: /" || true
    echo "  XDP programs left on fa/fb: $(ip -n "$NS_F" -o link show | grep -c 'prog/xdp' || true)"
}

phase_popgob() {
    phase_popgo popgob ${POPGO_ARGS_B[@]+"${POPGO_ARGS_B[@]}"}
}

phase_offload() {
    N=$((N + 1))
    log "phase offload: generator -> popgo run --offload xdp (fa -> fb in the kernel) -> sink k0"
    run_bg "offload_$N" "$NS_F" $((GEN_SECS + 30)) "$POPGO" run --config "$LOG/vs.toml" --cores "$FWD_CPU" \
        --stats-interval 1 --offload xdp ${POPGO_ARGS[@]+"${POPGO_ARGS[@]}"}
    wait_for "$LOG/offload_$N.log" "forwarding" 15
    gen_and_measure "offload_$N" "$NS_K" k0
    kill -INT "$(eval echo \$PID_offload_$N)" 2>/dev/null || true
    wait "$(eval echo \$PID_offload_$N)" || true
    grep -E "^(rx_packets|tx_packets|dropped|rx = tx|xdp offload)|  tx to-A" "$LOG/offload_$N.log" | sed 's/^/  offload: /' || true
    echo "  XDP programs left on fa/fb: $(ip -n "$NS_F" -o link show | grep -c 'prog/xdp' || true)"
}

phase_kernel() {
    N=$((N + 1))
    log "phase kernel: generator -> XDP redirect with MAC rewrite (fa -> fb, popgo-lab redirect) -> sink k0"
    run_bg "kernel_$N" "$NS_F" $((GEN_SECS + 30)) "$POPGO_LAB" redirect --iface fa --to fb --dst $MAC_K0 \
        --secs $((GEN_SECS + 20))
    wait_for "$LOG/kernel_$N.log" "redirect:" 15
    gen_and_measure "kernel_$N" "$NS_K" k0
    kill -INT "$(eval echo \$PID_kernel_$N)" 2>/dev/null || true
    wait "$(eval echo \$PID_kernel_$N)" || true
}

phase_testpmdb() {
    local saved=(${TESTPMD_ARGS[@]+"${TESTPMD_ARGS[@]}"})
    TESTPMD_ARGS=(${TESTPMD_ARGS_B[@]+"${TESTPMD_ARGS_B[@]}"})
    phase_testpmd testpmdb
    TESTPMD_ARGS=(${saved[@]+"${saved[@]}"})
}

phase_testpmd() { # phase_testpmd [TAG]
    N=$((N + 1))
    local tag=${1:-testpmd}
    command -v dpdk-testpmd >/dev/null || { log "dpdk-testpmd not installed: testpmd phase skipped"; return; }
    log "phase $tag: generator -> testpmd io (fa -> fb, 2x net_af_xdp) on CPU $FWD_CPU -> sink k0"
    run_bg "${tag}_$N" "$NS_F" $((GEN_SECS + 30)) dpdk-testpmd -l "$GEN_CPU,$FWD_CPU" --main-lcore "$GEN_CPU" \
        --no-huge -m 1024 --no-pci --no-telemetry --no-shconf --file-prefix "pgvs$ID$N" \
        --vdev net_af_xdp0,iface=fa,start_queue=0,queue_count=1 \
        --vdev net_af_xdp1,iface=fb,start_queue=0,queue_count=1 \
        -- --forward-mode=io --nb-cores=1 --burst=64 --stats-period 1 ${TESTPMD_ARGS[@]+"${TESTPMD_ARGS[@]}"}
    wait_for "$LOG/${tag}_$N.log" "Port statistics" 30
    gen_and_measure "${tag}_$N" "$NS_K" k0
    kill -INT "$(eval echo \$PID_${tag}_$N)" 2>/dev/null || true
    wait "$(eval echo \$PID_${tag}_$N)" || true
    # Remove whatever the AF_XDP PMD (libxdp) may have left.
    ip -n "$NS_F" link set dev fa xdp off 2>/dev/null || true
    ip -n "$NS_F" link set dev fb xdp off 2>/dev/null || true
}

log "load: $(cat /proc/loadavg) (2 vCPUs shared with other work: compare phases of one run only)"
log "kernel $(uname -r); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); generator $GEN_MODE"
for p in $PHASES; do "phase_$p"; done

echo
echo "==== summary (Mpps at the sink, 64 B MPLS frames) ===="
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print 0; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
for kind in ceiling popgo popgob offload kernel testpmd testpmdb; do
    vals=$(printf '%s\n' "${RESULTS[@]}" | awk -v k=$kind '$1==k {print $2}')
    med=$(echo "$vals" | awk 'NF' | median)
    printf '%-8s runs: %-30s median %s\n' "$kind" "$(echo $vals)" "$med"
    eval "MED_$kind=$med"
done
awk -v tb="$MED_testpmdb" -v p="$MED_popgo" -v t="$MED_testpmd" -v c="$MED_ceiling" -v o="$MED_offload" -v k="$MED_kernel" -v b="$MED_popgob" 'BEGIN {
    if (t > 0) printf "popgo / testpmd = %.2f\n", p / t;
    if (tb > 0) printf "popgo / testpmdb (TESTPMD_EXTRA_B) = %.2f\n", p / tb;
    if (b > 0 && p > 0) printf "popgob (POPGO_EXTRA_B) / popgo (POPGO_EXTRA) = %.2f\n", b / p;
    if (t > 0) printf "popgo --offload xdp / testpmd = %.2f\n", o / t;
    if (k > 0) printf "popgo --offload xdp / in-kernel XDP redirect = %.2f\n", o / k;
    if (c > 0) printf "share of the generator ceiling: popgo %.0f%%, offload %.0f%%, kernel %.0f%%, testpmd %.0f%%\n",
        100 * p / c, 100 * o / c, 100 * k / c, 100 * t / c }'
