//! The drop-reason table and the per-worker counter block.
//!
//! Adding a drop reason means adding one line to `drop_reasons!` below: the enum,
//! `COUNT`, `ALL`, `name()` and `description()` all come from it. Names are stable
//! snake_case strings: reports and tests use them.
//!
//! No allocation, no atomics: a worker owns its `WorkerStats` and does plain adds.

use super::latency::{lat_bucket, LAT_BUCKETS};

macro_rules! drop_reasons {
    ($($variant:ident => $name:literal, $desc:literal;)*) => {
        /// Why a packet was dropped. One variant per counted reason.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum DropReason { $($variant,)* }

        impl DropReason {
            /// Every reason, in table order (the index is `reason as usize`).
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];
            /// Number of reasons.
            pub const COUNT: usize = Self::ALL.len();

            /// Stable snake_case name used in reports and tests.
            pub const fn name(self) -> &'static str {
                match self { $(DropReason::$variant => $name,)* }
            }

            /// One-line description for humans.
            pub const fn description(self) -> &'static str {
                match self { $(DropReason::$variant => $desc,)* }
            }

            /// Looks a reason up by its stable name.
            pub fn from_name(name: &str) -> Option<DropReason> {
                Self::ALL.iter().copied().find(|r| r.name() == name)
            }
        }
    };
}

drop_reasons! {
    TooShort => "too_short", "frame shorter than an Ethernet header";
    VlanTooDeep => "vlan_too_deep", "more than two 802.1Q/802.1ad tags";
    NotMpls => "not_mpls", "ethertype is not MPLS unicast (0x8847)";
    MplsMulticast => "mpls_multicast", "MPLS multicast ethertype 0x8848 is not forwarded";
    TruncatedLabelStack => "truncated_label_stack", "label stack runs past the end of the frame";
    LabelStackTooDeep => "label_stack_too_deep", "more labels to pop than the data path handles in one pass";
    ReservedLabel => "reserved_label", "reserved label 1, 3-6 or 8-15 on top (router alert, GAL, OAM, extension, unassigned)";
    EntropyMalformed => "entropy_malformed", "entropy label indicator (7) without an entropy label below it";
    NoIlmEntry => "no_ilm_entry", "no ILM entry for the label";
    TtlExpired => "ttl_expired", "MPLS TTL or IP TTL/hop limit reaches 0";
    PayloadMismatch => "payload_mismatch", "payload under bottom of stack is not the IP family of the label";
    BadIpHeader => "bad_ip_header", "IP header truncated or with a bad header length";
    NoRoute => "no_route", "POP: no FIB route for the destination address";
    Oversize => "oversize", "frame larger than a packet buffer";
    BadOutPort => "bad_out_port", "output port is not attached to this data plane";
    TxRingFull => "tx_ring_full", "TX ring of the output port was full";
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Most output ports a data plane handles. Arrays indexed by port are this long so the
/// counter block has a fixed size and no allocation.
pub const MAX_PORTS: usize = 32;

/// Per-port packets and bytes that one burst forwards, added up while the burst is
/// processed and folded into [`WorkerStats`] once per burst ([`WorkerStats::count_tx_tally`])
/// by a TX path that sends every forwarded packet: one add per packet into an array
/// that stays in L1, instead of four counter updates per packet.
#[derive(Clone, Debug)]
pub struct TxTally {
    /// Ports counted: `pkts[..ports]` and `bytes[..ports]` are this burst's.
    ports: usize,
    pkts: [u64; MAX_PORTS],
    bytes: [u64; MAX_PORTS],
}

impl Default for TxTally {
    fn default() -> Self {
        TxTally { ports: 0, pkts: [0; MAX_PORTS], bytes: [0; MAX_PORTS] }
    }
}

impl TxTally {
    /// Starts a burst over ports `0..ports` (at most `MAX_PORTS`).
    #[inline(always)]
    pub fn reset(&mut self, ports: usize) {
        let ports = ports.min(MAX_PORTS);
        self.pkts[..ports].fill(0);
        self.bytes[..ports].fill(0);
        self.ports = ports;
    }

    /// One forwarded packet of `bytes` bytes out of `port` (`port < ports`, checked by
    /// the caller; the index is reduced modulo `MAX_PORTS` so it never panics).
    #[inline(always)]
    pub fn add(&mut self, port: usize, bytes: usize) {
        self.pkts[port % MAX_PORTS] += 1;
        self.bytes[port % MAX_PORTS] += bytes as u64;
    }

    /// (port, packets, bytes) of every port counted in this burst.
    pub fn iter(&self) -> impl Iterator<Item = (usize, u64, u64)> + '_ {
        let n = self.ports.min(MAX_PORTS);
        self.pkts[..n].iter().zip(&self.bytes[..n]).enumerate().map(|(p, (k, b))| (p, *k, *b))
    }
}

/// One worker's counters. The worker is the only writer; a report merges snapshots.
#[derive(Clone, Debug, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct WorkerStats {
    pub rx_pkts: u64,
    pub rx_bytes: u64,
    pub tx_pkts: u64,
    pub tx_bytes: u64,
    pub bursts: u64,
    pub drops: [u64; DropReason::COUNT],
    pub port_rx_pkts: [u64; MAX_PORTS],
    pub port_tx_pkts: [u64; MAX_PORTS],
    pub port_tx_bytes: [u64; MAX_PORTS],
    /// Events that are not drops.
    pub empty_polls: u64,
    pub rx_wakeups: u64,
    pub tx_wakeups: u64,
    pub fill_ring_starved: u64,
    /// Table generations the worker moved to, counted at the start of a burst against
    /// the previous burst's (the first against `WorkerLoop::start_generation`).
    pub ilm_swaps_seen: u64,
    /// Burst latency: bursts per live bucket ([`super::latency::lat_bucket`]) and the
    /// sum of their durations in ns (the Prometheus histogram's `_bucket` and `_sum`).
    pub lat_buckets: [u64; LAT_BUCKETS],
    pub lat_sum_ns: u64,
}

impl Default for WorkerStats {
    fn default() -> Self {
        WorkerStats {
            rx_pkts: 0,
            rx_bytes: 0,
            tx_pkts: 0,
            tx_bytes: 0,
            bursts: 0,
            drops: [0; DropReason::COUNT],
            port_rx_pkts: [0; MAX_PORTS],
            port_tx_pkts: [0; MAX_PORTS],
            port_tx_bytes: [0; MAX_PORTS],
            empty_polls: 0,
            rx_wakeups: 0,
            tx_wakeups: 0,
            fill_ring_starved: 0,
            ilm_swaps_seen: 0,
            lat_buckets: [0; LAT_BUCKETS],
            lat_sum_ns: 0,
        }
    }
}

impl WorkerStats {
    /// Counts one dropped packet.
    #[inline(always)]
    pub fn count_drop(&mut self, reason: DropReason) {
        self.drops[reason as usize] += 1;
    }

    /// Counts one transmitted packet on `port` (`port < MAX_PORTS`, checked by the caller).
    #[inline(always)]
    pub fn count_tx(&mut self, port: usize, bytes: usize) {
        self.tx_pkts += 1;
        self.tx_bytes += bytes as u64;
        self.port_tx_pkts[port] += 1;
        self.port_tx_bytes[port] += bytes as u64;
    }

    /// Counts a whole burst's forwarded packets as transmitted (what `count_tx` per
    /// packet would give).
    #[inline(always)]
    pub fn count_tx_tally(&mut self, t: &TxTally) {
        let n = t.ports.min(MAX_PORTS);
        let (mut pkts, mut bytes) = (0, 0);
        for p in 0..n {
            self.port_tx_pkts[p] += t.pkts[p];
            self.port_tx_bytes[p] += t.bytes[p];
            pkts += t.pkts[p];
            bytes += t.bytes[p];
        }
        self.tx_pkts += pkts;
        self.tx_bytes += bytes;
    }

    /// Counts one burst that took `ns` nanoseconds in the live latency histogram.
    #[inline(always)]
    pub fn record_burst_ns(&mut self, ns: u64) {
        self.lat_buckets[lat_bucket(ns)] += 1;
        self.lat_sum_ns += ns;
    }

    /// Sum of all drop counters.
    pub fn dropped_pkts(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Drop counter by reason.
    pub fn drop_count(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }

    /// Adds another block into this one (report time only).
    pub fn merge(&mut self, o: &WorkerStats) {
        self.rx_pkts += o.rx_pkts;
        self.rx_bytes += o.rx_bytes;
        self.tx_pkts += o.tx_pkts;
        self.tx_bytes += o.tx_bytes;
        self.bursts += o.bursts;
        for (a, b) in self.drops.iter_mut().zip(&o.drops) {
            *a += b;
        }
        for i in 0..MAX_PORTS {
            self.port_rx_pkts[i] += o.port_rx_pkts[i];
            self.port_tx_pkts[i] += o.port_tx_pkts[i];
            self.port_tx_bytes[i] += o.port_tx_bytes[i];
        }
        self.empty_polls += o.empty_polls;
        self.rx_wakeups += o.rx_wakeups;
        self.tx_wakeups += o.tx_wakeups;
        self.fill_ring_starved += o.fill_ring_starved;
        self.ilm_swaps_seen += o.ilm_swaps_seen;
        for (a, b) in self.lat_buckets.iter_mut().zip(&o.lat_buckets) {
            *a += b;
        }
        self.lat_sum_ns += o.lat_sum_ns;
    }

    /// `rx = tx + drops` (no packet in flight).
    pub fn balanced(&self) -> bool {
        self.rx_pkts == self.tx_pkts + self.dropped_pkts()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
            assert!(seen.insert(r.name()), "duplicate name {}", r.name());
            assert!(r.name().chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            assert!(!r.description().is_empty());
            assert_eq!(DropReason::from_name(r.name()), Some(*r));
        }
        assert_eq!(DropReason::from_name("nope"), None);
    }

    #[test]
    fn tally_counts_like_count_tx() {
        let mut t = TxTally::default();
        let (mut a, mut b) = (WorkerStats::default(), WorkerStats::default());
        for burst in [&[(0, 60), (3, 70), (0, 1500)][..], &[], &[(2, 64)]] {
            t.reset(4);
            for &(port, bytes) in burst {
                t.add(port, bytes);
                a.count_tx(port, bytes);
            }
            b.count_tx_tally(&t);
        }
        assert_eq!(a, b);
        assert_eq!(t.iter().collect::<Vec<_>>(), [(0, 0, 0), (1, 0, 0), (2, 1, 64), (3, 0, 0)]);
        t.reset(MAX_PORTS + 5);
        t.add(MAX_PORTS - 1, 9);
        b.count_tx_tally(&t);
        assert_eq!(b.port_tx_bytes[MAX_PORTS - 1], 9);
    }

    #[test]
    fn merge_adds_every_field_and_keeps_balance() {
        let mut a = WorkerStats { rx_pkts: 3, ..Default::default() };
        a.count_tx(1, 60);
        a.count_tx(2, 70);
        a.count_drop(DropReason::NoIlmEntry);
        a.record_burst_ns(700);
        assert!(a.balanced());
        let mut b = a.clone();
        b.merge(&a);
        assert_eq!(b.rx_pkts, 6);
        assert_eq!(b.port_tx_pkts[1], 2);
        assert_eq!(b.port_tx_bytes[2], 140);
        assert_eq!(b.drop_count(DropReason::NoIlmEntry), 2);
        assert_eq!((b.lat_buckets[1], b.lat_sum_ns), (2, 1400));
        assert!(b.balanced());
        b.rx_pkts += 1;
        assert!(!b.balanced());
    }
}
