//! VRP command lines through a control plane on the seed config: any lines either run
//! or get an error reply; commits keep the published tables equal to a full build.
use popgo::control::ControlPlane;
use popgo::qsbr::Publisher;
use popgo::stats::board::StatsBoard;
use std::sync::Arc;

const SEED: &str = include_str!("../../pcaps/seed.toml");

fn main() {
    let cfg = popgo::config::Config::parse(SEED).expect("the seed config parses");
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else { return };
        let snap = popgo::ilm::build(&cfg, 0).expect("the seed config builds");
        let mut plane = ControlPlane::new(cfg.clone(), Publisher::new(Box::new(snap), 1), Arc::new(StatsBoard::new(1)));
        let mut s = plane.new_session();
        for line in text.lines().take(64) {
            let r = plane.exec(&mut s, line);
            if r.close {
                s = plane.new_session();
            }
        }
        let full = popgo::ilm::build(plane.running(), 0).expect("a committed config builds");
        assert_eq!(popgo::ilm::build::first_difference(plane.current(), &full, plane.running()), None);
    });
}
