//! LXD's byte sizes (`units.ParseByteSizeString`): a whole number followed by a unit, decimal
//! (`kB`, `MB`, `GB`, ...) or binary (`KiB`, `MiB`, `GiB`, ...), or no unit for bytes.

const UNITS: &[(&str, u64)] = &[
    ("", 1),
    ("B", 1),
    (" bytes", 1),
    ("kB", 1000),
    ("MB", 1000u64.pow(2)),
    ("GB", 1000u64.pow(3)),
    ("TB", 1000u64.pow(4)),
    ("PB", 1000u64.pow(5)),
    ("EB", 1000u64.pow(6)),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
    ("PiB", 1 << 50),
    ("EiB", 1 << 60),
];

/// Parses a size such as `10GiB`, `512MiB`, `5GB` or `1048576` into bytes.
/// The error is the reason alone; the caller names the value.
pub fn parse_size(value: &str) -> Result<u64, String> {
    let invalid = |reason: &str| reason.to_string();
    let digits = value.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(invalid(
            "expected a whole number followed by a unit such as MiB, GiB or GB",
        ));
    }
    let (number, unit) = value.split_at(digits);
    let factor = UNITS
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|(_, f)| *f)
        .ok_or_else(|| {
            invalid(&format!(
                "unknown unit {unit:?} (use B, kB, MB, GB, TB, PB, EB, KiB, MiB, GiB, TiB, PiB or EiB)"
            ))
        })?;
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .filter(|n| i64::try_from(*n).is_ok())
        .ok_or_else(|| invalid("too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_lxd() {
        let cases: &[(&str, Option<u64>)] = &[
            ("10GiB", Some(10 << 30)),
            ("512MiB", Some(512 << 20)),
            ("5GB", Some(5_000_000_000)),
            ("1kB", Some(1000)),
            ("3KiB", Some(3072)),
            ("2TiB", Some(2 << 40)),
            ("7EB", Some(7 * 1000u64.pow(6))),
            ("4096", Some(4096)),
            ("4096B", Some(4096)),
            ("0", Some(0)),
            ("abc", None),
            ("", None),
            ("GiB", None),
            ("-5GiB", None),
            ("1.5GiB", None),
            ("5 GiB", None),
            ("5gib", None),
            ("5KB", None),
            ("5G", None),
            ("99999999999EiB", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_size(input).ok(), *want, "{input:?}");
        }
    }

    #[test]
    fn refusals_say_why() {
        let err = parse_size("abc").unwrap_err();
        assert!(err.starts_with("expected a whole number"), "{err}");
        let err = parse_size("5G").unwrap_err().to_string();
        assert!(err.contains("unknown unit \"G\""), "{err}");
    }
}
