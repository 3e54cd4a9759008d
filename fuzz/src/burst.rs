//! Frames through the worker loop (capture backend, `process_burst`): the input is a
//! list of frames, each a length byte then that many bytes; the first byte picks POPGO
//! or POP tables. Nothing panics and every frame is accounted: rx = tx + drops.
use popgo::io::pcap::{Capture, Writer};

const SEED: &str = include_str!("../../pcaps/seed.toml");

fn main() {
    let with = popgo::config::Config::parse(SEED).expect("seed");
    let without = popgo::config::Config::parse(&SEED.replace("pop_go = true", "pop_go = false")).expect("seed");
    let snaps = [popgo::ilm::build(&without, 0).expect("build"), popgo::ilm::build(&with, 0).expect("build")];
    afl::fuzz!(|data: &[u8]| {
        let Some((&pick, mut rest)) = data.split_first() else { return };
        let mut w = Writer::new(Vec::new()).expect("in memory");
        let mut n = 0u64;
        while let Some((&len, tail)) = rest.split_first() {
            let len = (len as usize).min(tail.len());
            w.write_packet(0, &tail[..len]).expect("in memory");
            rest = &tail[len..];
            n += 1;
        }
        let cap = Capture::from_bytes(w.into_inner().expect("in memory")).expect("a capture we wrote");
        let snap = &snaps[(pick & 1) as usize];
        let burst = 1 + (pick >> 1) as usize % popgo::io::MAX_BURST;
        let (stats, trace) = popgo::dataplane::worker::trace(snap, &cap, burst, true);
        assert_eq!(stats.rx_pkts, n);
        assert!(stats.balanced(), "rx = tx + drops");
        for (_, v, out) in &trace {
            if let popgo::io::Verdict::Forward(p) = v {
                assert!((*p as usize) < snap.ports && out.len() >= 14);
            }
        }
    });
}
