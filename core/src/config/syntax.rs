//! Places for the syntax errors serde reports late: an unknown top-level key (a `[bpg]`
//! typo) is reported at its own line, even when serde met another error first (it
//! visits the document's tables in key order, so the `missing field` of a `[bgp]` that
//! `[[bgp.network]]` created would otherwise win).

use serde::de::DeserializeOwned;

/// The top-level keys `T` accepts, read from the error serde gives for a key it does
/// not know (so the list follows `T` without being written twice).
fn known_keys<T: DeserializeOwned>() -> Vec<String> {
    let Err(e) = toml::from_str::<T>("popgo_probe_key = 0") else { return Vec::new() };
    let msg = e.message().to_string();
    let Some(at) = msg.find("expected") else { return Vec::new() };
    msg[at..].split('`').skip(1).step_by(2).map(str::to_string).collect()
}

/// The first top-level key of `text` (a TOML document) that `T` does not know: its
/// 1-based line and the message. `None` when there is none or `text` is not TOML.
pub(super) fn unknown_top_level_key<T: DeserializeOwned>(text: &str) -> Option<(usize, String)> {
    let doc: toml::Table = toml::from_str(text).ok()?;
    let known = known_keys::<T>();
    if known.is_empty() {
        return None;
    }
    let unknown: Vec<&String> = doc.keys().filter(|k| !known.contains(k)).collect();
    if unknown.is_empty() {
        return None;
    }
    // The first line that defines one: a `[key...]` / `[[key...]]` header, or `key =`
    // / `key.x =` before the first header.
    let mut top = true;
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim_start();
        let (head, rest) = if let Some(r) = l.strip_prefix("[[") {
            (true, r)
        } else if let Some(r) = l.strip_prefix('[') {
            (true, r)
        } else {
            (false, l)
        };
        if head {
            top = false;
        } else if !top {
            continue;
        }
        let rest = rest.trim_start();
        let name: String = match rest.strip_prefix('"') {
            Some(q) => q.split('"').next().unwrap_or("").to_string(),
            None => rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect(),
        };
        if let Some(k) = unknown.iter().find(|k| ***k == name) {
            let list = known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
            return Some((i + 1, format!("unknown table or key `{k}`, expected one of {list}")));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const SEED: &str = include_str!("../../../pcaps/seed.toml");

    fn err(text: &str) -> String {
        Config::parse(text).unwrap_err().to_string()
    }

    /// The 1-based line of the first line of `text` that starts with `start`, from `after`.
    fn line_of(text: &str, start: &str, after: usize) -> usize {
        text.lines().enumerate().skip(after).find(|(_, l)| l.starts_with(start)).unwrap().0 + 1
    }

    #[test]
    fn a_misspelt_section_is_named_at_its_line() {
        let text = SEED.replacen("[bgp]", "[bpg]", 1);
        let e = err(&text);
        let want = format!("line {}: unknown table or key `bpg`, expected one of `device`", line_of(&text, "[bpg]", 0));
        assert!(e.starts_with(&want), "{e}");
        let e = err(&SEED.replacen("[device]", "devise = 1\n[device]", 1));
        assert!(e.contains("unknown field `devise`"), "{e}");
    }

    #[test]
    fn duplicates_and_limits_name_the_key_line() {
        let text = SEED.replacen("name = \"to-B\"", "name = \"to-A\"", 1);
        let e = err(&text);
        assert!(
            e.starts_with(&format!("line {}: port.name: duplicate port", line_of(&text, "name = \"to-A\"", 9))),
            "{e}"
        );

        let mut text = SEED.to_string();
        let at = text.find("[[neighbor]]").unwrap();
        let ports: String =
            (0..40).map(|k| format!("[[port]]\nname = \"p{k}\"\nmac = \"02:00:00:00:00:{k:02x}\"\n")).collect();
        text.insert_str(at, &ports);
        let e = err(&text);
        // The 33rd [[port]]: three in the seed, then p29.
        let want = line_of(&text, "name = \"p29\"", 0) - 1;
        assert!(e.starts_with(&format!("line {want}: port: at most 32 ports")), "{e}");

        let ip = SEED.lines().find(|l| l.starts_with("ip = ")).unwrap();
        let text = SEED.replacen(
            "[[static_route]]",
            &format!("[[neighbor]]\n{ip}\nmac = \"02:00:00:00:00:99\"\nport = \"to-A\"\n\n[[static_route]]"),
            1,
        );
        let e = err(&text);
        let dup = text.lines().enumerate().filter(|(_, l)| *l == ip).nth(1).unwrap().0 + 1;
        assert!(e.starts_with(&format!("line {dup}: neighbor.ip: duplicate neighbor")), "{e}");
    }

    #[test]
    fn too_many_neighbors_is_refused_at_the_first_one_over_in_linear_time() {
        let mut text = SEED.to_string();
        let at = text.find("[[static_route]]").unwrap();
        let mut extra = String::new();
        for k in 0..70_000u32 {
            extra.push_str(&format!(
                "[[neighbor]]\nip = \"10.{}.{}.{}\"\nmac = \"02:00:00:00:00:01\"\nport = \"to-A\"\n",
                100 + (k >> 16),
                (k >> 8) & 255,
                k & 255
            ));
        }
        text.insert_str(at, &extra);
        let t = std::time::Instant::now();
        let e = err(&text);
        assert!(e.contains("neighbor: at most 65535 neighbors are supported"), "{e}");
        // The 65536th [[neighbor]]: two in the seed before the added ones.
        let want = SEED[..at].lines().count() + 4 * (65535 - 2) + 1;
        assert!(e.starts_with(&format!("line {want}: ")), "{e} (want line {want})");
        assert!(t.elapsed() < std::time::Duration::from_secs(30));
    }

    #[test]
    fn running_out_of_dynamic_labels_names_label_base() {
        let text = SEED.replacen("label_base = 48000", "label_base = 1048575", 1).replacen("label = 48122", "", 1)
            + "\n[[static_route]]\nprefix = \"10.9.0.0/16\"\nnext_hop = \"192.168.10.1\"\n"
            + "\n[[bgp.network]]\nprefix = \"10.9.0.0/16\"\n";
        let e = err(&text);
        let want =
            format!("line {}: bgp.label_base: 2 networks without a static label", line_of(&text, "label_base", 0));
        assert!(e.starts_with(&want), "{e}");
        // One fits.
        let one = SEED.replacen("label_base = 48000", "label_base = 1048575", 1).replacen("label = 48122", "", 1);
        assert!(Config::parse(&one).is_ok());
    }

    #[test]
    fn invalid_utf8_names_its_line_and_byte() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, b"[device]\nname = \"a\xff\"\n").unwrap();
        let e = Config::load(&p).unwrap_err().to_string();
        assert_eq!(e, "line 2: not UTF-8 (byte 18)");
    }
}
