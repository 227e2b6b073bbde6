//! Where the instructions and the bytes go, by crate: the profiles behind the
//! targets' rows. Instructions are callgrind's self cost per function
//! (`callgrind_annotate`), bytes the symbol sizes of the `perf` binaries
//! (`nm`); each summed by the crate the function belongs to (the first path
//! segment of its demangled name; the C library and the loader by their
//! object).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Instructions (or bytes) by crate.
pub type ByCrate = BTreeMap<String, f64>;

/// The crate a demangled Rust symbol belongs to: `aws_sigv4` for
/// `aws_sigv4::sign::v4::…` and for `<aws_sigv4::X as core::fmt::Debug>::fmt`.
pub fn crate_of(symbol: &str) -> String {
    let s = symbol.trim_start_matches(['<', '&', '*', ' ']);
    let s = s.strip_prefix("mut ").unwrap_or(s);
    let s = s.strip_prefix("dyn ").unwrap_or(s);
    let name: String = s
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if s[name.len()..].starts_with("::") && !name.is_empty() {
        name
    } else {
        "(other, not Rust)".into()
    }
}

/// Self instructions by crate in a callgrind output file.
pub fn instructions_by_crate(file: &Path) -> Result<ByCrate, String> {
    let out = Command::new("callgrind_annotate")
        .args(["--threshold=100", "--inclusive=no"])
        .arg(file)
        .output()
        .map_err(|e| format!("callgrind_annotate: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut by_crate = ByCrate::new();
    for line in text.lines() {
        // `1,234 (0.15%)  file:function [object]`
        let Some((count, rest)) = line.trim_start().split_once(' ') else {
            continue;
        };
        let Ok(count) = count.replace(',', "").parse::<f64>() else {
            continue;
        };
        let Some((_, rest)) = rest.split_once(")  ") else {
            continue;
        };
        if rest.starts_with("PROGRAM TOTALS") {
            continue;
        }
        let (location, object) = match rest.rsplit_once(" [") {
            Some((l, o)) => (l, o.trim_end_matches(']')),
            None => (rest, ""),
        };
        let function = location.split_once(':').map_or(location, |(_, f)| f);
        let mut name = crate_of(function);
        if name.starts_with('(') {
            name = object_name(object, location);
        }
        *by_crate.entry(name).or_default() += count;
    }
    if by_crate.is_empty() {
        return Err(format!("no functions in {}", file.display()));
    }
    Ok(by_crate)
}

/// What a non-Rust function belongs to: the C library, the dynamic loader,
/// or the binary's own code the symbol table does not name.
fn object_name(object: &str, location: &str) -> String {
    if object.contains("ld-linux") || location.starts_with("./elf/") {
        "the dynamic loader (ld.so)".into()
    } else if object.contains("libc") || location.starts_with("./") {
        "the C library (malloc, memcpy, …)".into()
    } else {
        "(unnamed)".into()
    }
}

/// Symbol bytes by crate in a binary (`nm --size-sort --demangle`).
pub fn bytes_by_crate(binary: &Path) -> Result<ByCrate, String> {
    let out = Command::new("nm")
        .args(["--size-sort", "--demangle", "--radix=d"])
        .arg(binary)
        .output()
        .map_err(|e| format!("nm: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut by_crate = ByCrate::new();
    for line in text.lines() {
        // `0000000000000123 T symbol`
        let mut parts = line.splitn(3, ' ');
        let (Some(size), Some(_kind), Some(symbol)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Ok(size) = size.parse::<f64>() else {
            continue;
        };
        let mut name = crate_of(symbol);
        if name.starts_with('(') {
            name = if symbol.starts_with("aws_lc_") {
                "aws-lc (C: the TLS crypto)".into()
            } else {
                "C and assembly (ring's crypto routines and tables, libc)".into()
            };
        }
        *by_crate.entry(name).or_default() += size;
    }
    if by_crate.is_empty() {
        return Err(format!("no symbols in {} (stripped?)", binary.display()));
    }
    Ok(by_crate)
}

/// `after - before` by crate, divided by `per`, the largest first, at most
/// `top` of them (the rest summed as "everything else").
pub fn difference(after: &ByCrate, before: &ByCrate, per: f64, top: usize) -> Vec<(String, f64)> {
    let mut rows: Vec<(String, f64)> = after
        .iter()
        .map(|(k, v)| (k.clone(), (v - before.get(k).copied().unwrap_or(0.0)) / per))
        .chain(
            before
                .iter()
                .filter(|(k, _)| !after.contains_key(*k))
                .map(|(k, v)| (k.clone(), -v / per)),
        )
        .collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    let rest: f64 = rows.iter().skip(top).map(|(_, v)| v).sum();
    rows.truncate(top);
    if rest != 0.0 {
        rows.push(("everything else".into(), rest));
    }
    rows
}

/// The largest rows as one line: `a 1.2 M (40 %), b …`.
pub fn summary(rows: &[(String, f64)], unit: &str, scale: f64, n: usize) -> String {
    let total: f64 = rows.iter().map(|(_, v)| v).sum();
    rows.iter()
        .filter(|(name, _)| name != "everything else")
        .take(n)
        .map(|(name, v)| {
            let amount = v / scale;
            let digits = usize::from(amount.abs() < 10.0);
            format!(
                "{name} {amount:.digits$} {unit} ({:.0} %)",
                100.0 * v / total.max(1.0)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_belong_to_the_crate_of_their_first_path_segment() {
        assert_eq!(
            crate_of("aws_sigv4::sign::v4::calculate_signature"),
            "aws_sigv4"
        );
        assert_eq!(
            crate_of("<aws_sigv4::X as core::fmt::Debug>::fmt"),
            "aws_sigv4"
        );
        assert_eq!(
            crate_of("<&mut serde_json::de::Deserializer<R>>::parse"),
            "serde_json"
        );
        assert_eq!(crate_of("malloc"), "(other, not Rust)");
        assert_eq!(crate_of("0x0000000000273426"), "(other, not Rust)");
    }

    #[test]
    fn differences_are_per_unit_largest_first_with_the_rest_summed() {
        let before = ByCrate::from([("a".into(), 10.0), ("b".into(), 5.0), ("gone".into(), 2.0)]);
        let after = ByCrate::from([("a".into(), 30.0), ("b".into(), 9.0), ("c".into(), 1.0)]);
        assert_eq!(
            difference(&after, &before, 2.0, 1),
            [
                ("a".to_string(), 10.0),
                ("everything else".to_string(), 1.5)
            ]
        );
    }
}
