//! Issue 13: the guides in `doc/` show real output. Each English guide is run here on real
//! `rxd` servers: its YAML blocks (`# file.yaml` on their first line) are written to a working
//! directory, and each console block runs on the server named by the `<!-- on NAME -->` line
//! above it, every `$ ` line through `sh`, its output compared with the lines under it. The
//! Japanese guide must hold the same blocks. `RXD_DOCS_WRITE=1` writes the outputs afresh into
//! both languages instead of comparing.
//!
//! The guides use `192.0.2.x` (documentation addresses); the test runs on its leased loopback
//! block and maps one to the other, realigning tables. Join tokens differ on every run: they
//! compare equal whatever their value, and a YAML block's token is the one printed last.

use std::path::{Path, PathBuf};
use std::process::Command;

use rxd_testkit::{Member, Net};

/// One fenced block of a guide: where its content lines are, and what they are.
#[derive(Debug, Clone)]
struct Block {
    /// Index of its first content line in the guide's lines.
    first: usize,
    /// Its content lines.
    lines: Vec<String>,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// A file to write, by name.
    Yaml(String),
    /// Commands to run on a server, by name.
    Console(String),
}

fn parse(text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut on: Option<String> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if let Some(name) = line
            .strip_prefix("<!-- on ")
            .and_then(|l| l.strip_suffix(" -->"))
        {
            on = Some(name.to_string());
        }
        let fence = match line {
            "```yaml" => Some(false),
            "```console" => Some(true),
            _ => None,
        };
        if let Some(console) = fence {
            let first = i + 1;
            let mut end = first;
            while lines[end].trim() != "```" {
                end += 1;
            }
            let content: Vec<String> = lines[first..end].iter().map(|l| l.to_string()).collect();
            let kind = if console {
                Kind::Console(
                    on.take()
                        .expect("a console block names its server above it"),
                )
            } else {
                let file = content[0]
                    .strip_prefix("# ")
                    .expect("a YAML block names its file on its first line")
                    .to_string();
                Kind::Yaml(file)
            };
            blocks.push(Block {
                first,
                lines: content,
                kind,
            });
            i = end;
        }
        i += 1;
    }
    blocks
}

/// Whether `word` looks like a join token (base64 JSON).
fn is_token(word: &str) -> bool {
    word.starts_with("eyJ")
        && word.len() > 40
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c))
}

/// Whether `word` has the shape of `pattern`, where `9` stands for any digit.
fn shaped(word: &str, pattern: &str) -> bool {
    word.len() == pattern.len()
        && word
            .chars()
            .zip(pattern.chars())
            .all(|(c, p)| if p == '9' { c.is_ascii_digit() } else { c == p })
}

/// A line with every token, date and time (a token's expiry) and the host's own defaults
/// replaced, for comparing.
fn normal(line: &str) -> String {
    if let Some(question) = HOST_DEFAULTS.iter().find(|q| line.starts_with(**q)) {
        return format!("{question} <host's default>: {}", answer_of(line));
    }
    line.split(',')
        .map(|field| {
            field
                .split(' ')
                .map(|w| {
                    if is_token(w) {
                        "<token>"
                    } else if shaped(w, "9999/99/99") {
                        "<date>"
                    } else if shaped(w, "99:99") {
                        "<time>"
                    } else {
                        w
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The last token in `lines`, if any.
fn last_token(lines: &[String]) -> Option<String> {
    lines
        .iter()
        .rev()
        .flat_map(|l| l.split([' ', ',']).rev())
        .find(|w| is_token(w))
        .map(str::to_string)
}

/// `rxd init`'s questions, asked on a pipe (one after the other on a line), as a terminal shows
/// them: each on its own line with the answer given; then what it printed after them.
fn transcript(stdout: &str, answers: &[String]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut rest = stdout;
    for answer in answers {
        // A question ends with ": ", or with "] " after its default (LXD's data-loss question).
        let end = [rest.find(": "), rest.find("] ")]
            .into_iter()
            .flatten()
            .min();
        let Some(at) = end else { break };
        lines.push(
            format!("{}{answer}", &rest[..at + 2])
                .trim_end()
                .to_string(),
        );
        rest = &rest[at + 2..];
    }
    lines.extend(rest.lines().filter(|l| !l.is_empty()).map(str::to_string));
    lines
}

/// `got`, with each line that equals the guide's line at its place but for what varies from
/// run to run replaced by the guide's.
fn keep_stable(got: Vec<String>, want: &[String]) -> Vec<String> {
    got.into_iter()
        .enumerate()
        .map(|(i, g)| match want.get(i) {
            Some(w) if normal(w) == normal(&g) => w.clone(),
            _ => g,
        })
        .collect()
}

/// The answer on a question's line of a guide: what follows its last ": " or "] ".
fn answer_of(line: &str) -> &str {
    [line.rfind(": "), line.rfind("] ")]
        .into_iter()
        .flatten()
        .max()
        .map(|i| &line[i + 2..])
        .unwrap_or("")
}

/// Questions whose default depends on the host (its address, name, storage drivers).
const HOST_DEFAULTS: &[&str] = &[
    "What IP address or DNS name should be used to reach this server?",
    "What member name should be used to identify this server in the cluster?",
    "Name of the storage backend to use",
];

/// Re-pads the ASCII tables in `lines` (their cells changed width when addresses were mapped).
fn realign(lines: Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut table: Vec<String> = Vec::new();
    let flush = |table: &mut Vec<String>, out: &mut Vec<String>| {
        if table.is_empty() {
            return;
        }
        // Each cell with whether it was centred (more than one space before its text).
        let rows: Vec<Option<Vec<(String, bool)>>> = table
            .iter()
            .map(|l| {
                l.starts_with('|').then(|| {
                    l.trim_matches('|')
                        .split('|')
                        .map(|c| (c.trim().to_string(), c.starts_with("  ")))
                        .collect()
                })
            })
            .collect();
        let columns = rows.iter().flatten().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                rows.iter()
                    .flatten()
                    .filter_map(|r| r.get(c))
                    .map(|(cell, _)| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let border = format!(
            "+{}+",
            widths
                .iter()
                .map(|w| "-".repeat(w + 2))
                .collect::<Vec<_>>()
                .join("+")
        );
        for row in &rows {
            match row {
                None => out.push(border.clone()),
                Some(cells) => {
                    let padded: Vec<String> = cells
                        .iter()
                        .zip(&widths)
                        .map(|((cell, centred), w)| {
                            if *centred {
                                format!(" {cell:^w$} ")
                            } else {
                                format!(" {cell:<w$} ")
                            }
                        })
                        .collect();
                    out.push(format!("|{}|", padded.join("|")));
                }
            }
        }
        table.clear();
    };
    for line in lines {
        if line.starts_with('+') || line.starts_with('|') {
            table.push(line);
        } else {
            flush(&mut table, &mut out);
            out.push(line);
        }
    }
    flush(&mut table, &mut out);
    out
}

/// The guides' directory.
fn doc_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../doc")
}

/// Runs the English guide `name` on three fresh servers and compares (or writes) its outputs;
/// answers its blocks as they should read.
async fn run_guide(name: &str, write: bool) -> Vec<Block> {
    let path = doc_dir().join("en").join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let blocks = parse(&text);
    let net = Net::lease();
    let ours = net.addr(1).trim_end_matches("1:8443").to_string();
    let to_test = |l: &str| l.replace("192.0.2.", &ours);
    let to_doc = |l: &str| l.replace(&ours, "192.0.2.");
    // A server for each name the guide runs commands on.
    let mut names: Vec<String> = Vec::new();
    for b in &blocks {
        if let Kind::Console(server) = &b.kind {
            if !names.contains(server) {
                names.push(server.clone());
            }
        }
    }
    let mut members: Vec<(String, Member)> =
        names.into_iter().map(|n| (n, Member::start())).collect();
    let work = tempfile::tempdir().unwrap();
    let path_env = format!(
        "{}:{}",
        rxd_testkit::bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut token: Option<String> = None;
    let mut failures = Vec::new();
    let mut rendered = Vec::new();
    for block in blocks {
        match &block.kind {
            Kind::Yaml(file) => {
                let lines: Vec<String> = block
                    .lines
                    .iter()
                    .map(|l| match (&token, l.split_once("cluster_token: ")) {
                        (Some(t), Some((head, _))) => format!("{head}cluster_token: {t}"),
                        _ => l.clone(),
                    })
                    .collect();
                let body: String = lines.iter().map(|l| to_test(l) + "\n").collect();
                std::fs::write(work.path().join(file), body).unwrap();
                rendered.push(Block { lines, ..block });
            }
            Kind::Console(server) => {
                let m = &mut members
                    .iter_mut()
                    .find(|(n, _)| n == server)
                    .unwrap_or_else(|| panic!("no server {server} in {name}"))
                    .1;
                let mut lines = Vec::new();
                let mut expected: Vec<(String, Vec<String>)> = Vec::new();
                for l in &block.lines {
                    match l.strip_prefix("$ ") {
                        Some(cmd) => expected.push((cmd.to_string(), Vec::new())),
                        None => expected
                            .last_mut()
                            .expect("a console block starts with a command")
                            .1
                            .push(l.clone()),
                    }
                }
                for (cmd, want) in expected {
                    // systemd runs the packaged daemon; here the test kit does.
                    let by_kit = match cmd.as_str() {
                        "systemctl stop rxd" => {
                            m.stop();
                            true
                        }
                        "systemctl start rxd" => {
                            m.start_again();
                            true
                        }
                        other => {
                            assert!(!other.starts_with("systemctl "), "{name}: `{other}`");
                            false
                        }
                    };
                    if by_kit {
                        assert!(want.is_empty(), "{name}: `{cmd}` prints nothing");
                        lines.push(format!("$ {cmd}"));
                        continue;
                    }
                    // The guide's data directory is the packaged one.
                    let run = to_test(&cmd).replace("/var/lib/rxd", &m.dir().display().to_string());
                    // `rxd init` asks: the guide shows each question with its answer, which
                    // are given on its standard input here.
                    let asked = cmd == "rxd init";
                    let answers: Vec<String> = want
                        .iter()
                        .map(|l| {
                            let answer = answer_of(l);
                            match &token {
                                Some(t) if is_token(answer) => t.clone(),
                                _ => to_test(answer),
                            }
                        })
                        .collect();
                    let input = asked.then(|| answers.join("\n") + "\n");
                    let out = rxd_testkit::run_bounded(
                        Command::new("sh")
                            .args(["-c", &run])
                            .current_dir(work.path())
                            .env("PATH", &path_env)
                            .env("RXD_DIR", m.dir())
                            .env("LXD_DIR", m.dir()),
                        input.as_deref(),
                        std::time::Duration::from_secs(120),
                    );
                    let stdout = String::from_utf8_lossy(&out.stdout);
                    assert!(
                        out.status.success(),
                        "{name}: `{cmd}` on {server} failed: {}{stdout}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    let got = if asked {
                        transcript(&stdout, &answers)
                            .iter()
                            .map(|l| to_doc(l))
                            .collect()
                    } else {
                        realign(stdout.lines().map(to_doc).collect())
                    };
                    if let Some(t) = last_token(&got) {
                        token = Some(t);
                    }
                    let norm = |v: &[String]| v.iter().map(|l| normal(l)).collect::<Vec<_>>();
                    if norm(&got) != norm(&want) && !write {
                        failures.push(format!(
                            "{name}: `{cmd}` on {server} printed:\n{}\nthe guide shows:\n{}",
                            got.join("\n"),
                            want.join("\n")
                        ));
                    }
                    lines.push(format!("$ {cmd}"));
                    // Written afresh, a line keeps the guide's text where only what varies
                    // from run to run (tokens, times, the host's defaults) differs.
                    lines.extend(if write { keep_stable(got, &want) } else { want });
                }
                rendered.push(Block { lines, ..block });
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n(run RXD_DOCS_WRITE=1 cargo nextest run -p rxd-tests --test docs to write them)",
        failures.join("\n\n")
    );
    rendered
}

/// Writes `blocks`' lines into the guide at `path` in place of its own blocks' lines.
fn write_blocks(path: &Path, blocks: &[Block]) {
    let text = std::fs::read_to_string(path).unwrap();
    let own = parse(&text);
    assert_eq!(
        own.len(),
        blocks.len(),
        "{} has other blocks",
        path.display()
    );
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = Vec::new();
    let mut at = 0;
    for (mine, new) in own.iter().zip(blocks) {
        out.extend(lines[at..mine.first].iter().map(|l| l.to_string()));
        out.extend(new.lines.iter().cloned());
        at = mine.first + mine.lines.len();
    }
    out.extend(lines[at..].iter().map(|l| l.to_string()));
    std::fs::write(path, out.join("\n") + "\n").unwrap();
}

/// Runs guide `name` and checks it in both languages (or writes both).
async fn check_guide(name: &str) {
    let write = std::env::var_os("RXD_DOCS_WRITE").is_some();
    let blocks = run_guide(name, write).await;
    let en = doc_dir().join("en").join(name);
    let ja = doc_dir().join("ja").join(name);
    if write {
        write_blocks(&en, &blocks);
        write_blocks(&ja, &blocks);
        return;
    }
    let ja_blocks = parse(&std::fs::read_to_string(&ja).unwrap());
    assert_eq!(
        ja_blocks.len(),
        blocks.len(),
        "the Japanese {name} has other blocks"
    );
    for (j, e) in ja_blocks.iter().zip(&blocks) {
        let norm = |v: &[String]| v.iter().map(|l| normal(l)).collect::<Vec<_>>();
        assert_eq!(j.kind, e.kind);
        assert_eq!(
            norm(&j.lines),
            norm(&e.lines),
            "the Japanese {name} differs"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn forming_a_cluster_shows_real_output_in_both_languages() {
    check_guide("forming-a-cluster.md").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn managing_members_shows_real_output_in_both_languages() {
    check_guide("managing-members.md").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_shows_real_output_in_both_languages() {
    check_guide("metrics.md").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn recovering_from_quorum_loss_shows_real_output_in_both_languages() {
    check_guide("recovery.md").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn forming_interactively_shows_real_output_in_both_languages() {
    check_guide("forming-interactively.md").await;
}
