//! YAML as `lxc` prints it (Go's gopkg.in/yaml.v2), produced with serde-saphyr.
//!
//! serde-saphyr already matches yaml.v2's block layout (`- ` items at the parent's indent,
//! `{}`/`[]` for empty collections, `|` for multi-line strings). Two habits differ, and are
//! adjusted here line by line:
//!
//! * yaml.v2 double-quotes a string only when its plain form would read back as another type
//!   (`""`, `"true"`, `"8443"`, timestamps); when the plain form is merely not allowed by the
//!   syntax (`@`, `a: b`, a leading quote) it single-quotes. serde-saphyr double-quotes both.
//! * yaml.v2 never folds with `>`; long strings stay on one line here (yaml.v2 would wrap
//!   plain scalars with spaces at 80 columns; that case is not reproduced).

use serde::Serialize;

use crate::CliError;

/// Serialises `value` as `lxc` would print it.
pub fn to_string<T: Serialize>(value: &T) -> Result<String, CliError> {
    let mut options = serde_saphyr::SerializerOptions::default();
    options.folded_wrap_chars = usize::MAX;
    let text =
        serde_saphyr::to_string_with_options(value, options).map_err(|e| CliError::Yaml {
            message: e.to_string(),
        })?;
    Ok(requote(&text))
}

/// yaml.v2 prints Go's time values bare, where a string of the same text is double-quoted:
/// unquotes the top-level `keys` of `text`.
pub fn bare_times(text: &str, keys: &[&str]) -> String {
    text.lines()
        .map(|l| {
            for key in keys {
                let quoted = format!("{key}: \"");
                if let Some(rest) = l.strip_prefix(&quoted) {
                    return format!("{key}: {}", rest.trim_end_matches('"'));
                }
            }
            l.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Parses YAML (stdin or the editor's buffer) into `T`. An error reads as lxc's do,
/// `yaml: line L column C: <what>`, on one line: the parser's own rendering adds an `error:`
/// prefix and a source excerpt, which `Error: ` before it would repeat.
pub fn from_str<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, CliError> {
    serde_saphyr::from_str(text).map_err(|e| {
        let plain = e.without_snippet().to_string();
        let message = match e.location().filter(|l| l.line() > 0) {
            Some(l) => {
                let (line, column) = (l.line(), l.column());
                let at = format!(" at line {line}, column {column}");
                let what = plain.strip_suffix(&at).unwrap_or(&plain);
                format!("yaml: line {line} column {column}: {what}")
            }
            None => format!("yaml: {plain}"),
        };
        CliError::Yaml { message }
    })
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_block_indicator(value: &str) -> bool {
    matches!(value, "|" | "|-" | "|+" | ">" | ">-" | ">+")
}

fn requote(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // Indentation of the line that opened a block scalar, while inside one.
    let mut block: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        if let Some(opened) = block {
            if body.is_empty() || indent_of(body) > opened {
                out.push_str(line);
                continue;
            }
            block = None;
        }
        let fixed = requote_line(body);
        let value = fixed.rsplit(": ").next().unwrap_or("");
        let item = fixed.trim_start().trim_start_matches("- ");
        if is_block_indicator(value.trim()) || is_block_indicator(item.trim()) {
            block = Some(indent_of(body));
        }
        out.push_str(&fixed);
        if line.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// Re-quotes the key and the value of one line of block YAML.
fn requote_line(line: &str) -> String {
    let indent = indent_of(line);
    let mut out = String::from(&line[..indent]);
    let mut rest = &line[indent..];
    while let Some(r) = rest.strip_prefix("- ") {
        out.push_str("- ");
        rest = r;
    }
    // A quoted key, or a quoted sequence item.
    if rest.starts_with('"') {
        if let Some((s, after)) = parse_double_quoted(rest) {
            out.push_str(&v2_quote(&s, &rest[..rest.len() - after.len()]));
            if let Some(value) = after.strip_prefix(": ") {
                out.push_str(": ");
                out.push_str(&requote_value(value));
            } else {
                out.push_str(after);
            }
            return out;
        }
        out.push_str(rest);
        return out;
    }
    match rest.find(": ") {
        Some(pos) => {
            out.push_str(&rest[..pos + 2]);
            out.push_str(&requote_value(&rest[pos + 2..]));
        }
        None => out.push_str(rest),
    }
    out
}

fn requote_value(value: &str) -> String {
    if value.starts_with('"') {
        if let Some((s, after)) = parse_double_quoted(value) {
            if after.is_empty() {
                return v2_quote(&s, value);
            }
        }
    }
    value.to_string()
}

/// Reads a double-quoted scalar at the start of `s`; returns its value and what follows.
fn parse_double_quoted(s: &str) -> Option<(String, &str)> {
    let mut chars = s.char_indices().skip(1);
    let mut value = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &s[i + 1..])),
            '\\' => {
                let (_, e) = chars.next()?;
                match e {
                    'n' => value.push('\n'),
                    't' => value.push('\t'),
                    'r' => value.push('\r'),
                    '0' => value.push('\0'),
                    '"' => value.push('"'),
                    '\\' => value.push('\\'),
                    '/' => value.push('/'),
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String = (0..n)
                            .filter_map(|_| chars.next().map(|(_, h)| h))
                            .collect();
                        value.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    }
                    other => {
                        value.push('\\');
                        value.push(other);
                    }
                }
            }
            c => value.push(c),
        }
    }
    None
}

/// How yaml.v2 would quote `s`, given serde-saphyr's double-quoted form `original`.
fn v2_quote(s: &str, original: &str) -> String {
    let printable = s.chars().all(|c| !c.is_control());
    if !printable || resolves_to_non_string(s) {
        return original.to_string();
    }
    format!("'{}'", s.replace('\'', "''"))
}

/// Whether yaml.v2 would read the plain scalar `s` as something other than a string.
fn resolves_to_non_string(s: &str) -> bool {
    const SPECIAL: &[&str] = &[
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
        "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
        ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
        ".NaN", ".NAN", "<<",
    ];
    if SPECIAL.contains(&s) {
        return true;
    }
    let plain = s.replace('_', "");
    let unsigned = plain.trim_start_matches(['+', '-']);
    let is_int = |t: &str| {
        let (digits, radix) = if let Some(h) = t.strip_prefix("0x") {
            (h, 16)
        } else if let Some(b) = t.strip_prefix("0b") {
            (b, 2)
        } else if let Some(o) = t.strip_prefix("0o") {
            (o, 8)
        } else {
            (t, 10)
        };
        !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix))
    };
    if is_int(unsigned) {
        return true;
    }
    if unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && plain.parse::<f64>().is_ok()
    {
        return true;
    }
    // Timestamps: yaml.v2 tries them whenever the text starts like a date.
    let b = s.as_bytes();
    if b.len() >= 6
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5].is_ascii_digit()
    {
        return true;
    }
    is_base60(&plain)
}

/// `[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?`, which YAML 1.1 reads as a number.
fn is_base60(s: &str) -> bool {
    let s = s.trim_start_matches(['+', '-']);
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if !frac.chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let mut parts = int.split(':');
    let first = parts.next().unwrap_or("");
    if first.is_empty() || !first.chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let mut any = false;
    for p in parts {
        any = true;
        let ok = (1..=2).contains(&p.len())
            && p.chars().all(|c| c.is_ascii_digit())
            && p.parse::<u32>().map(|n| n < 60).unwrap_or(false);
        if !ok {
            return false;
        }
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn parse_errors_are_one_line_with_one_prefix() {
        for bad in ["config:\n  user.a: [\n", "config: x: y\n", "devices: 3\n"] {
            let err = from_str::<BTreeMap<String, BTreeMap<String, String>>>(bad).unwrap_err();
            let text = err.to_string();
            assert!(text.starts_with("yaml: line "), "{text}");
            assert!(!text.contains('\n'), "{text}");
            assert!(!text.contains("error"), "{text}");
        }
    }

    #[test]
    fn member_yaml_matches_lxc_cluster_show() {
        // Printed by `lxc cluster show node1` against LXD 5.0.2.
        let want = "\
roles:
- database-leader
- database
failure_domain: default
description: \"\"
config: {}
groups:
- default
server_name: node1
url: https://127.0.77.1:8443
database: true
status: Online
message: Fully operational
architecture: x86_64
";
        let member: rxd_api::ClusterMember = serde_json::from_str(
            r#"{"roles":["database-leader","database"],"failure_domain":"default","description":"","config":{},"groups":["default"],"server_name":"node1","url":"https://127.0.77.1:8443","database":true,"status":"Online","message":"Fully operational","architecture":"x86_64"}"#,
        )
        .unwrap();
        assert_eq!(to_string(&member).unwrap(), want);
    }

    #[test]
    fn event_yaml_matches_lxc_monitor() {
        // Printed by `lxc monitor --type lifecycle` (the event decoded into a Go map).
        let want = "\
location: node1
metadata:
  action: profile-created
  requestor:
    address: '@'
    protocol: unix
    username: root
  source: /1.0/profiles/p1
project: default
timestamp: \"2026-11-26T15:31:45.251407707Z\"
type: lifecycle
";
        let v: serde_json::Value = serde_json::from_str(r#"{"type":"lifecycle","timestamp":"2026-11-26T15:31:45.251407707Z","metadata":{"action":"profile-created","source":"/1.0/profiles/p1","requestor":{"username":"root","protocol":"unix","address":"@"}},"location":"node1","project":"default"}"#).unwrap();
        assert_eq!(to_string(&v).unwrap(), want);
    }

    #[test]
    fn scalars_are_quoted_as_yaml_v2_does() {
        let cases = [
            ("", "\"\""),
            ("@", "'@'"),
            ("true", "\"true\""),
            ("8443", "\"8443\""),
            ("1.5", "\"1.5\""),
            ("no", "\"no\""),
            ("a: b", "'a: b'"),
            ("x #y", "'x #y'"),
            ("it's: x", "'it''s: x'"),
            (
                "\"source\" property for storage pool \"local\"",
                "'\"source\" property for storage pool \"local\"'",
            ),
            ("127.0.77.1:8443", "127.0.77.1:8443"),
            ("2026/11/26 18:17 UTC", "2026/11/26 18:17 UTC"),
            ("Default LXD profile", "Default LXD profile"),
        ];
        for (s, want) in cases {
            let mut m = BTreeMap::new();
            m.insert("k", s);
            assert_eq!(to_string(&m).unwrap(), format!("k: {want}\n"), "{s:?}");
        }
    }

    #[test]
    fn literal_blocks_are_left_alone() {
        let mut m = BTreeMap::new();
        m.insert(
            "certificate",
            "-----BEGIN CERTIFICATE-----\nMIIB: \"x\"\n-----END CERTIFICATE-----\n",
        );
        m.insert("z", "@");
        assert_eq!(
            to_string(&m).unwrap(),
            "certificate: |\n  -----BEGIN CERTIFICATE-----\n  MIIB: \"x\"\n  -----END CERTIFICATE-----\nz: '@'\n"
        );
    }

    #[test]
    fn base60_and_timestamps_resolve_specially() {
        for s in ["12:30", "2026-11-26", "0x1F", "-5", "1e3", ".5"] {
            assert!(resolves_to_non_string(s), "{s}");
        }
        for s in ["127.0.0.1:8443", "node1", "x86_64", "2026/11/26", "1.2.3"] {
            assert!(!resolves_to_non_string(s), "{s}");
        }
    }
}
