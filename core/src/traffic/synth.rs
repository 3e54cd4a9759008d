//! `popgo gen synth` traffic: a built-in [`Profile`] (one label stack of fixed depth
//! over uniform, single or Zipf labels, optionally some IPv6, every packet from one
//! source), and the config that forwards its labels. Used by the benches too.
//!
//! The profile draws only what it uses ([`Draws::Used`]: the label rank, then the IPv6
//! coin when there is IPv6 traffic) and sends from one source ([`Sources::Fixed`]). That
//! keeps the bytes of `gen synth` captures, which the benches and the comparison scripts
//! rely on, what they have always been (`synth_bytes_are_pinned`). Its config comes from
//! [`synth_config`], which lists the networks in another order than [`Profile::config`].

use super::dist::LabelDist;
use super::profile::{Draws, Profile, SizeMix, Sources, Summary};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Frames per second of synth captures: packet i is stamped i microseconds after
/// [`EPOCH_NS`](super::frames::EPOCH_NS).
pub const SYNTH_RATE_PPS: f64 = 1e6;

/// Synthetic benchmark traffic: the arguments of `popgo gen synth`, turned into a
/// profile by [`Synth::profile`].
#[derive(Clone, Debug)]
pub struct Synth {
    pub count: u64,
    /// Labels are `first_label .. first_label + labels`.
    pub labels: u32,
    pub first_label: u32,
    pub dist: LabelDist,
    /// Frame size in bytes (Ethernet header through payload, no FCS).
    pub size: usize,
    /// Share of IPv6 payloads, 0.0..=1.0.
    pub v6_share: f64,
    /// Label stack depth: the BGP label plus `depth - 1` labels below it.
    pub depth: usize,
    pub seed: u64,
    /// A transport label on top of every frame (see [`Profile::transport_label`]).
    pub transport_label: Option<u32>,
}

impl Default for Synth {
    fn default() -> Self {
        Synth {
            count: 100_000,
            labels: 100_000,
            first_label: 16,
            dist: LabelDist::Uniform,
            size: 64,
            v6_share: 0.0,
            depth: 1,
            seed: 1,
            transport_label: None,
        }
    }
}

/// Destination IPv4 address that synthetic label `l` carries: 10.x.y.z from the label.
pub fn synth_v4_dst(l: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 | (l & 0x00ff_ffff))
}

/// Destination IPv6 address that synthetic (6PE) label `l` carries: `2001:db8::<label>`.
pub fn synth_v6_dst(l: u32) -> Ipv6Addr {
    Ipv6Addr::from(0x2001_0db8_0000_0000_0000_0000_0000_0000u128 | l as u128)
}

impl Synth {
    /// The smallest frame that holds `depth` labels and an IPv4 (or, with IPv6 traffic,
    /// IPv6) header.
    pub fn min_size(depth: usize, v6: bool) -> usize {
        14 + 4 * depth.max(1) + if v6 { 48 } else { 28 }
    }

    /// Checks the parameters (messages name `gen synth`'s options).
    pub fn check(&self) -> Result<(), String> {
        let min = Synth::min_size(self.depth, self.v6_share > 0.0);
        let max = crate::traffic::profile::MAX_FRAME_BYTES;
        if self.size < min || self.size > max {
            return Err(format!(
                "--size {} must be in {min}..={max} for this stack depth and IP mix (replay's frame buffers hold \
                 {max} bytes: larger frames are dropped as oversize)",
                self.size
            ));
        }
        let blocks = if self.v6_share > 0.0 { 2 } else { 1 };
        if self.labels == 0
            || self.first_label < 16
            || self.first_label as u64 + blocks * self.labels as u64 > (1 << 20)
        {
            return Err(format!(
                "--first-label {} + --labels {}{} must fit in 16..=1048575",
                self.first_label,
                self.labels,
                if blocks == 2 { " x 2 (IPv6 traffic uses a second block)" } else { "" }
            ));
        }
        if !(0.0..=1.0).contains(&self.v6_share) {
            return Err(format!("--v6-share {} must be in 0..=1", self.v6_share));
        }
        if !(1..=8).contains(&self.depth) {
            return Err(format!("--depth {} must be in 1..=8", self.depth));
        }
        if let Some(t) = self.transport_label {
            if self.depth > 7 {
                return Err(format!("--depth {} must be in 1..=7 with --transport-label", self.depth));
            }
            super::profile::check_transport_label(t, self.first_label, self.labels, self.v6_share > 0.0)
                .map_err(|m| format!("--transport-label {m}"))?;
            if self.size < min + 4 {
                return Err(format!("--size {} must be at least {} with --transport-label", self.size, min + 4));
            }
        }
        Ok(())
    }

    /// The profile these parameters describe (checked first).
    pub fn profile(&self) -> Result<Profile, String> {
        self.check()?;
        Ok(Profile {
            name: "synth".into(),
            seed: self.seed,
            packets: self.count,
            rate_pps: SYNTH_RATE_PPS,
            size: SizeMix::Fixed(self.size),
            ipv6_share: self.v6_share,
            flows: self.labels as u64,
            malformed_share: 0.0,
            label_count: self.labels,
            first_label: self.first_label,
            dist: self.dist,
            depth: self.depth,
            explicit_null_share: 0.0,
            entropy_share: 0.0,
            transport_label: self.transport_label,
            vlan_share: 0.0,
            vlan_tags: 1,
            draws: Draws::Used,
            sources: Sources::Fixed,
        })
    }

    /// Generates the frames with the profile generator, calling `out(timestamp_ns, frame)`
    /// for each.
    pub fn generate(&self, out: impl FnMut(u64, &[u8])) -> Result<Summary, String> {
        Ok(self.profile()?.generate(out))
    }
}

/// A popgo config that forwards labels `first .. first + labels` with POPGO, one /32
/// network per label, spread over `neighbors` next hops on `ports` ports. With `v6`, the
/// IPv6 block `first + labels .. first + 2 * labels` gets one /128 network each as well.
pub fn synth_config(first: u32, labels: u32, ports: usize, neighbors: usize, v6: bool) -> String {
    use std::fmt::Write;
    let mut s = synth_head(ports, neighbors, v6);
    for (prefix, nh, _) in synth_routes(first, labels, neighbors, v6).take(labels as usize) {
        let _ = writeln!(s, "\n[[static_route]]\nprefix = \"{prefix}\"\nnext_hop = \"{nh}\"");
    }
    if v6 {
        for (prefix, nh, _) in synth_routes(first, labels, neighbors, v6).skip(labels as usize) {
            let _ = writeln!(s, "\n[[static_route]]\nprefix = \"{prefix}\"\nnext_hop = \"{nh}\"");
        }
    }
    let _ = writeln!(s, "\n[bgp]\nas = 100\nlabel_mode = \"per-route\"\npop_go = true\nlabel_base = 16");
    for (prefix, _, l) in synth_routes(first, labels, neighbors, v6) {
        let _ = writeln!(s, "\n[[bgp.network]]\nprefix = \"{prefix}\"\nlabel = {l}");
    }
    s
}

/// The config of [`synth_config`] with its routes and networks in a route table file
/// (see `config::table`) named `table`: the same tables, for sizes where a TOML array
/// of a million tables is slow to read. [`write_synth_table`] writes the file.
pub fn synth_table_config(ports: usize, neighbors: usize, v6: bool, table: &str) -> String {
    use std::fmt::Write;
    let mut s = synth_head(ports, neighbors, v6);
    let _ =
        writeln!(s, "\n[bgp]\nas = 100\nlabel_mode = \"per-route\"\npop_go = true\nlabel_base = 16\ntable = {table:?}");
    s
}

/// Writes the route table file of [`synth_table_config`]: one line per label, in the
/// order of [`synth_config`]'s routes and networks.
pub fn write_synth_table(
    out: &mut impl std::io::Write,
    first: u32,
    labels: u32,
    neighbors: usize,
    v6: bool,
) -> std::io::Result<()> {
    writeln!(out, "# prefix next-hop label: {labels} labelled routes from label {first}")?;
    for (prefix, nh, l) in synth_routes(first, labels, neighbors, v6) {
        writeln!(out, "{prefix} {nh} {l}")?;
    }
    Ok(())
}

/// The config of [`synth_config`] with its routes and networks in an MRT RIB dump named
/// `mrt` (see `config::mrt`): the same networks and labels (dynamic, from `first`, in
/// dump order), their next hops spread over the neighbors by prefix.
/// [`write_synth_mrt`] writes the dump.
pub fn synth_mrt_config(first: u32, ports: usize, neighbors: usize, v6: bool, mrt: &str) -> String {
    use std::fmt::Write;
    let mut s = synth_head(ports, neighbors, v6);
    let _ = writeln!(
        s,
        "\n[bgp]\nas = 100\nlabel_mode = \"per-route\"\npop_go = true\nlabel_base = {first}\nmrt = {mrt:?}"
    );
    s
}

/// Writes the MRT RIB dump of [`synth_mrt_config`] to `path`: a RIB record per synth
/// network (in the order of [`synth_config`]'s), each with an entry of each of `peers`
/// collector peers. A name ending in `.gz` or `.bz2` is compressed accordingly.
pub fn write_synth_mrt(path: &std::path::Path, first: u32, labels: u32, v6: bool, peers: u16) -> std::io::Result<()> {
    use crate::config::mrt::{Peer, RibWriter};
    use crate::config::Prefix;
    use std::net::IpAddr;
    let file = std::io::BufWriter::with_capacity(1 << 16, std::fs::File::create(path)?);
    let name = path.to_string_lossy();
    let peer_list: Vec<Peer> = (0..peers)
        .map(|i| Peer { ip: IpAddr::V4(Ipv4Addr::new(10, 255, (i >> 8) as u8, i as u8)), asn: 65_000 + i as u32 })
        .collect();
    let entries: Vec<u16> = (0..peers).collect();
    let write = |out: &mut dyn std::io::Write| -> std::io::Result<()> {
        let mut w = RibWriter::new(out, Ipv4Addr::new(10, 255, 255, 255), &peer_list)?;
        let bad = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
        for l in first..first + labels {
            w.prefix(Prefix::new(IpAddr::V4(synth_v4_dst(l)), 32).map_err(bad)?, &entries)?;
        }
        if v6 {
            for l in first + labels..first + 2 * labels {
                w.prefix(Prefix::new(IpAddr::V6(synth_v6_dst(l)), 128).map_err(bad)?, &entries)?;
            }
        }
        Ok(())
    };
    // The encoders' trailers are written by finish(), not by a flush.
    let file = if name.ends_with(".gz") {
        let mut z = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        write(&mut z)?;
        z.finish()?
    } else if name.ends_with(".bz2") {
        let mut z = bzip2::write::BzEncoder::new(file, bzip2::Compression::fast());
        write(&mut z)?;
        z.finish()?
    } else {
        let mut file = file;
        write(&mut file)?;
        file
    };
    file.into_inner().map(|_| ()).map_err(|e| e.into_error())
}

/// Device, ports and neighbors of the synth configs.
fn synth_head(ports: usize, neighbors: usize, v6: bool) -> String {
    use std::fmt::Write;
    let mut s = String::from("[device]\nname = \"bench\"\n");
    for p in 0..ports {
        let _ = writeln!(s, "\n[[port]]\nname = \"p{p}\"\nmac = \"02:00:00:00:00:{:02x}\"", 0xf0 + p);
    }
    for n in 0..neighbors {
        let _ = writeln!(
            s,
            "\n[[neighbor]]\nip = \"192.168.{n}.1\"\nmac = \"02:00:00:00:{n:02x}:01\"\nport = \"p{}\"",
            n % ports
        );
        if v6 {
            let _ = writeln!(
                s,
                "\n[[neighbor]]\nip = \"fd00::{n:x}:1\"\nmac = \"02:00:00:01:{n:02x}:01\"\nport = \"p{}\"",
                n % ports
            );
        }
    }
    s
}

/// (prefix, next hop, label) of every synth network: the IPv4 block, then the IPv6 one.
fn synth_routes(first: u32, labels: u32, neighbors: usize, v6: bool) -> impl Iterator<Item = (String, String, u32)> {
    let v4 = (first..first + labels)
        .map(move |l| (format!("{}/32", synth_v4_dst(l)), format!("192.168.{}.1", l as usize % neighbors), l));
    let v6 = (first + labels..first + if v6 { 2 * labels } else { labels })
        .map(move |l| (format!("{}/128", synth_v6_dst(l)), format!("fd00::{:x}:1", l as usize % neighbors), l));
    v4.chain(v6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::mpls::LabelStack;

    /// The table-file form of a synth config builds the same tables as the TOML form,
    /// and the TOML form's bytes stay what tools and tests were made with.
    #[test]
    fn synth_table_matches_synth_config() {
        for v6 in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let mut t = Vec::new();
            write_synth_table(&mut t, 100, 500, 16, v6).unwrap();
            std::fs::write(dir.path().join("r.txt"), &t).unwrap();
            std::fs::write(dir.path().join("c.toml"), synth_table_config(4, 16, v6, "r.txt")).unwrap();
            let a = crate::config::Config::load(&dir.path().join("c.toml")).unwrap();
            let b = crate::config::Config::parse(&synth_config(100, 500, 4, 16, v6)).unwrap();
            let strip = |c: &crate::config::Config| {
                let mut c = c.clone();
                c.static_routes.iter_mut().for_each(|r| r.line = 0);
                c.bgp.iter_mut().flat_map(|b| b.networks.iter_mut()).for_each(|n| n.line = 0);
                c.neighbors.iter_mut().for_each(|n| n.line = 0);
                c
            };
            assert_eq!(strip(&a), strip(&b));
        }
        let h = |s: &str| s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
        assert_eq!(h(&synth_config(16, 3, 4, 16, true)), SYNTH_3_V6);
    }

    /// FNV-1a of `synth_config(16, 3, 4, 16, true)` (`gen synth --labels 3 --v6-share
    /// 0.5 --config-out`) as the generator has always written it.
    const SYNTH_3_V6: u64 = 0x3979_e4a1_867a_3d2e;

    #[test]
    fn synth_frames_have_the_requested_shape() {
        let s = Synth {
            count: 500,
            labels: 10,
            dist: LabelDist::Zipf(1.2),
            size: 128,
            v6_share: 0.5,
            depth: 2,
            ..Synth::default()
        };
        let mut v6 = 0;
        let mut first = 0;
        s.generate(|_, f| {
            assert_eq!(f.len(), 128);
            let st = LabelStack::new_checked(&f[14..]).unwrap();
            assert_eq!(st.depth(), 2);
            let l = st.entries().next().unwrap().label();
            assert!((16..36).contains(&l), "v4 labels 16..26, v6 labels 26..36");
            first += (l == 16 || l == 26) as u32;
            match etherparse::SlicedPacket::from_ip(st.payload()).unwrap().net {
                Some(etherparse::NetSlice::Ipv6(_)) => v6 += 1,
                Some(etherparse::NetSlice::Ipv4(_)) => {}
                other => panic!("{other:?}"),
            }
        })
        .unwrap();
        assert!((150..350).contains(&v6), "v6 share {v6}/500");
        assert!(first > 100, "zipf rank 1 is most frequent: {first}");
        assert!(Synth { size: 20, ..Synth::default() }.check().is_err());
    }

    #[test]
    fn a_transport_label_goes_on_top_and_the_config_pops_it() {
        let s = Synth { count: 200, labels: 10, first_label: 100, transport_label: Some(18), ..Synth::default() };
        let mut frames = Vec::new();
        s.generate(|_, f| frames.push(f.to_vec())).unwrap();
        for f in &frames {
            let st = LabelStack::new_checked(&f[14..]).unwrap();
            let l: Vec<u32> = st.entries().map(|e| e.label()).collect();
            assert!(l.len() == 2 && l[0] == 18 && (100..110).contains(&l[1]), "{l:?}");
        }
        for bad in [16, 105, 0, 1 << 20] {
            assert!(
                Synth { first_label: 100, labels: 10, transport_label: Some(bad), ..Synth::default() }.check().is_err()
                    == (bad != 16),
                "{bad}"
            );
        }
    }

    /// `gen synth` captures made by earlier builds, the benches and the comparison
    /// scripts rely on these exact bytes.
    #[test]
    fn synth_bytes_are_pinned() {
        let d = Synth { count: 3000, ..Synth::default() };
        for (s, want) in [
            (d.clone(), 0xf5f3_797a_d921_b1d3),
            (Synth { dist: LabelDist::Zipf(1.1), ..d.clone() }, 0x9d50_d8cf_9867_4337),
            (Synth { v6_share: 0.3, size: 128, ..d.clone() }, 0x66e2_b22c_0dfd_981f),
            (Synth { depth: 2, ..d.clone() }, 0xa598_c35a_f553_d6ed),
            (
                Synth {
                    dist: LabelDist::Zipf(0.9),
                    v6_share: 0.5,
                    depth: 3,
                    size: 128,
                    labels: 1000,
                    first_label: 100,
                    seed: 7,
                    ..d.clone()
                },
                0xcaa9_5052_6970_e1aa,
            ),
            (Synth { dist: LabelDist::Single, v6_share: 1.0, size: 100, ..d.clone() }, 0x57ff_d7e0_9004_47cc),
        ] {
            let got = crate::traffic::profile::tests::fingerprint(|out| {
                s.generate(out).unwrap();
            });
            assert_eq!(got, want, "{s:?}");
        }
    }
}
