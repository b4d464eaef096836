//! Output formats as `lxc` prints them: `table` and `compact` (olekukonko/tablewriter's
//! layout), `csv` (Go's encoding/csv), `json` (Go's json.Encoder: compact, HTML-escaped, one
//! line) and `yaml` (see [`crate::yaml`]).

use std::cmp::Ordering;

use serde::Serialize;

use crate::CliError;

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Format {
    /// ASCII table with lines between rows.
    #[default]
    Table,
    /// Borderless table.
    Compact,
    /// Comma-separated values, no header.
    Csv,
    /// One line of JSON.
    Json,
    /// YAML.
    Yaml,
}

/// A byte count as Go's `units.GetByteSizeStringIEC(n, precision)` writes it.
pub fn bytes_iec(n: u64, precision: usize) -> String {
    if n < 1024 {
        return format!("{n}B");
    }
    let mut v = n as f64;
    for unit in ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"] {
        v /= 1024.0;
        if v < 1024.0 {
            return format!("{v:.precision$}{unit}");
        }
    }
    format!("{v:.precision$}EB")
}

/// Renders rows the way `lxc`'s `RenderTable` does; `raw` is what JSON and YAML show.
pub fn render<T: Serialize + ?Sized>(
    format: Format,
    header: &[&str],
    rows: &[Vec<String>],
    raw: &T,
) -> Result<String, CliError> {
    Ok(match format {
        Format::Table => table(header, rows, true),
        Format::Compact => table(header, rows, false),
        Format::Csv => csv(rows),
        Format::Json => json_line(raw)? + "\n",
        Format::Yaml => crate::yaml::to_string(&raw)?,
    })
}

/// Display width of a cell line. Go's runewidth counts East Asian wide characters as two;
/// names and addresses here are ASCII, so characters are counted.
fn width(s: &str) -> usize {
    s.chars().count()
}

/// tablewriter's centring: the extra space goes to the right.
fn centre(s: &str, w: usize) -> String {
    let gap = w.saturating_sub(width(s));
    let left = gap / 2;
    format!("{}{}{}", " ".repeat(left), s, " ".repeat(gap - left))
}

fn pad_right(s: &str, w: usize) -> String {
    format!("{}{}", s, " ".repeat(w.saturating_sub(width(s))))
}

/// `table` (borders, a line after the header and between rows) or `compact` (no borders, no
/// separators). Headers are centred, cells left-aligned, multi-line cells stacked.
pub fn table(header: &[&str], rows: &[Vec<String>], bordered: bool) -> String {
    let cols = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(cols) {
            for line in cell.split('\n') {
                widths[i] = widths[i].max(width(line));
            }
        }
    }
    let rule: String = {
        let mut s = String::from("+");
        for w in &widths {
            s.push_str(&"-".repeat(w + 2));
            s.push('+');
        }
        s.push('\n');
        s
    };
    let (edge, sep) = if bordered { ("|", "|") } else { (" ", "") };
    let line = |cells: Vec<String>| {
        let mut s = String::from(edge);
        for (i, c) in cells.iter().enumerate() {
            s.push(' ');
            s.push_str(c);
            s.push(' ');
            s.push_str(if i + 1 == cols { edge } else { sep });
        }
        s.push('\n');
        s
    };

    let mut out = String::new();
    if bordered {
        out.push_str(&rule);
    }
    out.push_str(&line(
        header
            .iter()
            .zip(&widths)
            .map(|(h, w)| centre(h, *w))
            .collect(),
    ));
    if bordered {
        out.push_str(&rule);
    }
    for row in rows {
        let split: Vec<Vec<&str>> = (0..cols)
            .map(|i| {
                row.get(i)
                    .map(|c| c.split('\n').collect())
                    .unwrap_or_default()
            })
            .collect();
        let height = split.iter().map(Vec::len).max().unwrap_or(1).max(1);
        for h in 0..height {
            out.push_str(&line(
                split
                    .iter()
                    .zip(&widths)
                    .map(|(lines, w)| pad_right(lines.get(h).copied().unwrap_or(""), *w))
                    .collect(),
            ));
        }
        if bordered {
            out.push_str(&rule);
        }
    }
    out
}

/// Go's encoding/csv: a field is quoted when it holds a comma, a quote, a CR or LF, or starts
/// with a space; quotes are doubled; lines end in `\n`.
pub fn csv(rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    for row in rows {
        let fields: Vec<String> = row
            .iter()
            .map(|f| {
                let needs =
                    f.contains([',', '"', '\r', '\n']) || f.starts_with([' ', '\t']) || f == "\\.";
                if needs {
                    format!("\"{}\"", f.replace('"', "\"\""))
                } else {
                    f.clone()
                }
            })
            .collect();
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

/// Go's json escapes `<`, `>`, `&`, U+2028 and U+2029 even inside strings; those characters
/// only ever occur inside strings in JSON text, so a textual replacement is exact.
pub fn go_json_escape(s: &str) -> String {
    s.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// Compact JSON as Go's encoder writes it, without the trailing newline.
pub fn json_line<T: Serialize + ?Sized>(raw: &T) -> Result<String, CliError> {
    let s = serde_json::to_string(raw).map_err(|source| CliError::Json { source })?;
    Ok(go_json_escape(&s))
}

/// `json.MarshalIndent(v, "", "\t")`: tab indent; a `serde_json::Value` has its keys sorted,
/// as Go's maps do, and a struct keeps its field order, as Go's structs do.
pub fn json_indented<T: Serialize + ?Sized>(value: &T) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    value
        .serialize(&mut ser)
        .expect("JSON values always serialise");
    go_json_escape(&String::from_utf8(buf).expect("serde_json writes UTF-8"))
}

/// lxc's `SortColumnsNaturally`: rows compared column by column, digit runs as numbers.
pub fn sort_naturally(rows: &mut [Vec<String>]) {
    rows.sort_by(|a, b| {
        for (x, y) in a.iter().zip(b) {
            match natural_cmp(x, y) {
                Ordering::Equal => continue,
                other => return other,
            }
        }
        a.len().cmp(&b.len())
    });
}

fn natural_cmp(a: &str, b: &str) -> Ordering {
    let chunks = |s: &str| -> Vec<(bool, String)> {
        let mut out: Vec<(bool, String)> = Vec::new();
        for c in s.chars() {
            let digit = c.is_ascii_digit();
            match out.last_mut() {
                Some((d, chunk)) if *d == digit => chunk.push(c),
                _ => out.push((digit, c.to_string())),
            }
        }
        out
    };
    let (ca, cb) = (chunks(a), chunks(b));
    for ((da, xa), (db, xb)) in ca.iter().zip(&cb) {
        let ord = if *da && *db {
            let (ta, tb) = (xa.trim_start_matches('0'), xb.trim_start_matches('0'));
            ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb))
        } else {
            xa.cmp(xb)
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    ca.len().cmp(&cb.len())
}

/// `YES`/`NO` as lxc prints booleans in tables.
pub fn yes_no(b: bool) -> String {
    if b { "YES" } else { "NO" }.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_read_as_go_writes_them() {
        assert_eq!(bytes_iec(1023, 2), "1023B");
        assert_eq!(bytes_iec(1536, 2), "1.50KiB");
        assert_eq!(bytes_iec(32768, 0), "32KiB");
        assert_eq!(bytes_iec(3 * 1024 * 1024 * 1024, 2), "3.00GiB");
    }

    fn rows(v: &[&[&str]]) -> Vec<Vec<String>> {
        v.iter()
            .map(|r| r.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    // Printed by `lxc storage list` against LXD 5.0.2.
    const STORAGE_TABLE: &str = "\
+-------+--------+-------------+---------+---------+
| NAME  | DRIVER | DESCRIPTION | USED BY |  STATE  |
+-------+--------+-------------+---------+---------+
| local | dir    |             | 1       | CREATED |
+-------+--------+-------------+---------+---------+
";
    const STORAGE_COMPACT: &str = "  NAME   DRIVER  DESCRIPTION  USED BY   STATE   \n  local  dir                  1        CREATED  \n";

    #[test]
    fn tables_match_lxc() {
        let header = ["NAME", "DRIVER", "DESCRIPTION", "USED BY", "STATE"];
        let data = rows(&[&["local", "dir", "", "1", "CREATED"]]);
        assert_eq!(table(&header, &data, true), STORAGE_TABLE);
        assert_eq!(table(&header, &data, false), STORAGE_COMPACT);
    }

    #[test]
    fn multi_line_cells_stack() {
        // Printed by `lxc cluster list -f compact`.
        let want = "  NAME             URL                 ROLES       ARCHITECTURE  FAILURE DOMAIN  DESCRIPTION  STATE        MESSAGE       \n  node1  https://127.0.77.1:8443  database-leader  x86_64        default                      ONLINE  Fully operational  \n                                  database                                                                               \n";
        let header = [
            "NAME",
            "URL",
            "ROLES",
            "ARCHITECTURE",
            "FAILURE DOMAIN",
            "DESCRIPTION",
            "STATE",
            "MESSAGE",
        ];
        let data = rows(&[&[
            "node1",
            "https://127.0.77.1:8443",
            "database-leader\ndatabase",
            "x86_64",
            "default",
            "",
            "ONLINE",
            "Fully operational",
        ]]);
        assert_eq!(table(&header, &data, false), want);
    }

    #[test]
    fn empty_table_has_header_only() {
        let want = "+------+-------+\n| NAME | TOKEN |\n+------+-------+\n";
        assert_eq!(table(&["NAME", "TOKEN"], &[], true), want);
    }

    #[test]
    fn csv_quotes_like_go() {
        let data = rows(&[
            &["node1", "database-leader,database", "", "say \"hi\""],
            &[" lead", "a\nb", "plain", "x"],
        ]);
        assert_eq!(
            csv(&data),
            "node1,\"database-leader,database\",,\"say \"\"hi\"\"\"\n\" lead\",\"a\nb\",plain,x\n"
        );
    }

    #[test]
    fn json_escapes_html_like_go() {
        let v = serde_json::json!({"a": "<b>&"});
        assert_eq!(json_line(&v).unwrap(), r#"{"a":"\u003cb\u003e\u0026"}"#);
    }

    #[test]
    fn indented_json_uses_tabs_and_sorted_keys() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{"server_name":"node1","enabled":true,"member_config":[]}"#)
                .unwrap();
        assert_eq!(
            json_indented(&v),
            "{\n\t\"enabled\": true,\n\t\"member_config\": [],\n\t\"server_name\": \"node1\"\n}"
        );
    }

    #[test]
    fn natural_sort_orders_numbers_by_value() {
        let mut data = rows(&[&["node10"], &["node2"], &["node1"], &["alpha"]]);
        sort_naturally(&mut data);
        let names: Vec<_> = data.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(names, ["alpha", "node1", "node2", "node10"]);
    }
}
