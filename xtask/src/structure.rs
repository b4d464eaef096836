//! The structure rules of ARCHITECTURE.md, checked against the tree:
//! - its crate table names every package of the workspace, and nothing else;
//! - its dependency table is exactly what the manifests declare (`cargo metadata`), so the
//!   direction it shows is the real one; product crates never depend on dev-only ones;
//! - the daemon's modules do not call each other in circles, except the circles listed in
//!   [`KNOWN_DAEMON_CYCLES`], each of which must still exist (the list only shrinks).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Circles between the daemon's modules that exist today, to be taken apart by moving
/// membership into the `cluster` crate. A new circle, or a listed one that no longer exists,
/// breaks the rule.
pub const KNOWN_DAEMON_CYCLES: &[&[&str]] = &[&[
    "handlers::cluster",
    "handlers::internal_cluster",
    "heartbeat",
    "join",
    "leave",
    "warnings",
]];

/// Packages that only tests and tools use; no product crate may depend on them.
const DEV_ONLY: &[&str] = &["rxd-testkit", "rxd-fault", "rxd-tests", "xtask"];

/// Every broken rule, as a sentence.
pub fn check(root: &Path) -> Result<Vec<String>> {
    let doc = std::fs::read_to_string(root.join("ARCHITECTURE.md"))
        .context("cannot read ARCHITECTURE.md")?;
    let packages = workspace_packages(root)?;
    let mut problems = crate_table(root, &doc, &packages)?;
    problems.extend(dependency_table(&doc, &packages)?);
    problems.extend(daemon_cycles(&root.join("crates/daemon/src"))?);
    Ok(problems)
}

/// One workspace package and its dependencies on other workspace packages.
#[derive(Debug, Default)]
pub struct Package {
    /// Normal and build dependencies.
    pub uses: BTreeSet<String>,
    /// Dev-dependencies that are not also normal ones (the package itself excluded).
    pub tests_use: BTreeSet<String>,
}

fn workspace_packages(root: &Path) -> Result<BTreeMap<String, Package>> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .output()
        .context("cannot run cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let names: BTreeSet<String> = meta["packages"]
        .as_array()
        .context("no packages in cargo metadata")?
        .iter()
        .filter_map(|p| p["name"].as_str().map(String::from))
        .collect();
    let mut packages = BTreeMap::new();
    for p in meta["packages"].as_array().into_iter().flatten() {
        let name = p["name"].as_str().unwrap_or_default().to_string();
        let mut pkg = Package::default();
        for d in p["dependencies"].as_array().into_iter().flatten() {
            let dep = d["name"].as_str().unwrap_or_default().to_string();
            if !names.contains(&dep) || dep == name {
                continue;
            }
            match d["kind"].as_str() {
                Some("dev") => {
                    pkg.tests_use.insert(dep);
                }
                _ => {
                    pkg.uses.insert(dep);
                }
            }
        }
        let uses = pkg.uses.clone();
        pkg.tests_use.retain(|d| !uses.contains(d));
        packages.insert(name, pkg);
    }
    Ok(packages)
}

/// The rows of the Markdown table that follows `heading`, as cells, without the header rows.
fn table_rows<'a>(doc: &'a str, heading: &str) -> Result<Vec<Vec<&'a str>>> {
    let start = doc
        .lines()
        .position(|l| l.trim() == heading)
        .with_context(|| format!("ARCHITECTURE.md has no `{heading}`"))?;
    let rows: Vec<Vec<&str>> = doc
        .lines()
        .skip(start + 1)
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim()
                .trim_matches('|')
                .split(" | ")
                .map(str::trim)
                .collect()
        })
        .collect();
    if rows.is_empty() {
        bail!("ARCHITECTURE.md has no table under `{heading}`");
    }
    Ok(rows)
}

/// The words in backticks in a table cell.
fn ticked(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

fn crate_table(
    root: &Path,
    doc: &str,
    packages: &BTreeMap<String, Package>,
) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut listed = BTreeSet::new();
    for row in table_rows(doc, "## Crates")? {
        let words = ticked(row[0]);
        let Some(&name) = words.get(1).or(words.first()) else {
            problems.push(format!("crate table row `{}` names no package", row[0]));
            continue;
        };
        if row[0].contains("its own workspace") {
            let dir = words[0].trim_end_matches('/');
            let manifest =
                std::fs::read_to_string(root.join(dir).join("Cargo.toml")).unwrap_or_default();
            if !manifest.contains(&format!("name = \"{name}\"")) {
                problems.push(format!(
                    "crate table lists `{name}` in {dir}/, which holds no such package"
                ));
            }
            continue;
        }
        if !packages.contains_key(name) {
            problems.push(format!(
                "crate table lists `{name}`, which is not a workspace package"
            ));
        }
        listed.insert(name.to_string());
    }
    for name in packages.keys() {
        if !listed.contains(name) {
            problems.push(format!(
                "workspace package `{name}` is missing from ARCHITECTURE.md's crate table"
            ));
        }
    }
    Ok(problems)
}

fn dependency_table(doc: &str, packages: &BTreeMap<String, Package>) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut listed = BTreeSet::new();
    for row in table_rows(doc, "## Dependency direction")? {
        let [name, uses, tests_use] = row.as_slice() else {
            problems.push(format!(
                "dependency table row `{}` does not have three cells",
                row.join(" | ")
            ));
            continue;
        };
        let Some(&name) = ticked(name).first() else {
            problems.push(format!("dependency table row `{name}` names no package"));
            continue;
        };
        listed.insert(name.to_string());
        let Some(pkg) = packages.get(name) else {
            problems.push(format!(
                "dependency table lists `{name}`, which is not a workspace package"
            ));
            continue;
        };
        let doc_uses: BTreeSet<String> = ticked(uses).into_iter().map(String::from).collect();
        let doc_tests: BTreeSet<String> = ticked(tests_use).into_iter().map(String::from).collect();
        if doc_uses != pkg.uses {
            problems.push(format!(
                "`{name}` depends on {:?}, ARCHITECTURE.md says {:?}",
                pkg.uses, doc_uses
            ));
        }
        if doc_tests != pkg.tests_use {
            problems.push(format!(
                "`{name}`'s tests depend on {:?}, ARCHITECTURE.md says {:?}",
                pkg.tests_use, doc_tests
            ));
        }
        if !DEV_ONLY.contains(&name) {
            for dep in pkg.uses.iter().filter(|d| DEV_ONLY.contains(&d.as_str())) {
                problems.push(format!(
                    "product crate `{name}` depends on the dev-only `{dep}`"
                ));
            }
        }
    }
    for name in packages.keys() {
        if !listed.contains(name) {
            problems.push(format!(
                "workspace package `{name}` is missing from ARCHITECTURE.md's dependency table"
            ));
        }
    }
    Ok(problems)
}

/// A module of the daemon's library: `join`, `handlers`, `handlers::cluster`, …
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap_or(file).with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().map(String::as_str) == Some("mod") {
        parts.pop();
    }
    parts.join("::")
}

/// The modules each module of `src` names through `crate::` or `super::` paths. The crate
/// root (`lib.rs`) and the binary (`main.rs`) are left out: the root declares every module.
pub fn module_graph(src: &Path) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let mut files = Vec::new();
    collect_rs(src, &mut files)?;
    let modules: BTreeSet<String> = files
        .iter()
        .map(|f| module_of(src, f))
        .filter(|m| m != "lib" && m != "main")
        .collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let module = module_of(src, file);
        if !modules.contains(&module) {
            continue;
        }
        let text = std::fs::read_to_string(file)?;
        let parent = module.rsplit_once("::").map(|(p, _)| p.to_string());
        let mut targets = BTreeSet::new();
        for path in paths_in(&text) {
            let full = match path.split_once("::") {
                Some(("crate", rest)) => rest.to_string(),
                Some(("super", rest)) => match &parent {
                    Some(p) => format!("{p}::{rest}"),
                    None => rest.to_string(),
                },
                _ => continue,
            };
            if let Some(target) = longest_module(&modules, &full) {
                if target != module && !module.starts_with(&format!("{target}::")) {
                    targets.insert(target);
                }
            }
        }
        graph.insert(module, targets);
    }
    Ok(graph)
}

fn collect_rs(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {dir:?}"))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_rs(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// Paths starting with `crate::` or `super::`, with `use` trees expanded
/// (`use crate::{a, b::{c, d}}` gives `crate::a`, `crate::b::c` and `crate::b::d`), across lines.
fn paths_in(text: &str) -> Vec<String> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" ");
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut at = 0;
    while at < code.len() {
        let rest = &code[at..];
        let Some(found) = ["crate::", "super::"]
            .iter()
            .filter_map(|h| rest.find(h).map(|i| (i, *h)))
            .min()
        else {
            break;
        };
        let (i, head) = found;
        let start = at + i;
        at = start + head.len();
        let before = start.checked_sub(1).map(|b| bytes[b] as char);
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let (tree, used) = use_tree(&code[at..]);
        at += used;
        for path in tree {
            let path = format!("{head}{path}");
            let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
            out.push(parts.join("::"));
        }
    }
    out
}

/// The paths of one `use` tree at the start of `s` (each starting with `::`), and how many
/// bytes it took.
fn use_tree(s: &str) -> (Vec<String>, usize) {
    let ident: String = s
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
        .collect();
    let mut used = ident.len();
    let prefix = format!("::{}", ident);
    if !s[used..].starts_with('{') {
        return (vec![prefix], used);
    }
    used += 1;
    let mut out = Vec::new();
    loop {
        let skipped = s[used..].len() - s[used..].trim_start_matches([' ', ',']).len();
        used += skipped;
        if used >= s.len() {
            break;
        }
        if s[used..].starts_with('}') {
            used += 1;
            break;
        }
        let (inner, n) = use_tree(&s[used..]);
        if n == 0 {
            // `self`, `*`, `as` renames and other words: skip one character.
            used += s[used..].chars().next().map_or(1, char::len_utf8);
            continue;
        }
        used += n;
        for p in inner {
            out.push(format!("{prefix}{p}"));
        }
    }
    (out, used)
}

/// The longest module that is a prefix of `path` (`handlers::cluster::post` gives
/// `handlers::cluster`), or none for an item of the crate root.
fn longest_module(modules: &BTreeSet<String>, path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find(|candidate| modules.contains(candidate))
}

/// The strongly connected components of more than one module (Tarjan's algorithm), each
/// sorted, in sorted order.
pub fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out.sort();
    s.out
}

fn daemon_cycles(src: &Path) -> Result<Vec<String>> {
    let graph = module_graph(src)?;
    let found = cycles(&graph);
    let known: Vec<Vec<String>> = KNOWN_DAEMON_CYCLES
        .iter()
        .map(|c| {
            let mut c: Vec<String> = c.iter().map(|m| m.to_string()).collect();
            c.sort();
            c
        })
        .collect();
    let mut problems = Vec::new();
    for c in found.iter().filter(|c| !known.contains(c)) {
        let edges: Vec<String> = c
            .iter()
            .flat_map(|from| {
                graph[from]
                    .iter()
                    .filter(|to| c.contains(to))
                    .map(move |to| format!("{from} -> {to}"))
            })
            .collect();
        problems.push(format!(
            "the daemon's modules {} call each other in a circle ({})",
            c.join(", "),
            edges.join(", ")
        ));
    }
    for c in known.iter().filter(|c| !found.contains(c)) {
        problems.push(format!(
            "the circle {} is gone: take it off KNOWN_DAEMON_CYCLES in xtask/src/structure.rs",
            c.join(", ")
        ));
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &str)]) -> BTreeMap<String, BTreeSet<String>> {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    }

    #[test]
    fn cycles_are_found_and_a_line_is_not_one() {
        assert!(cycles(&graph(&[("a", "b"), ("b", "c")])).is_empty());
        assert_eq!(
            cycles(&graph(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")])),
            vec![vec!["a".to_string(), "b".into(), "c".into()]]
        );
    }

    #[test]
    fn paths_are_read_from_use_lines_braces_and_code() {
        let text = "use crate::{join, handlers::{cluster::x,\n events}};\n\
                    let a = super::peer::call();\n// crate::commented\nfoo_crate::no();";
        assert_eq!(
            paths_in(text),
            vec![
                "crate::join",
                "crate::handlers::cluster::x",
                "crate::handlers::events",
                "super::peer::call"
            ]
        );
    }

    #[test]
    fn the_tree_keeps_the_structure_rules() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let problems = check(root).unwrap();
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
