//! `cargo xtask verify` checks the tree without touching a file: format, the structure rules of
//! ARCHITECTURE.md, clippy with warnings as errors, the documentation build and every test.
//! `cargo xtask fix` rewrites what can be rewritten (format, clippy's machine fixes); run it on
//! your own diff only. `cargo xtask structure` runs the structure rules alone.

mod structure;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

const USAGE: &str = "usage: cargo xtask <verify [--no-tests] | fix | structure>";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["verify"] => verify(&root, true),
        ["verify", "--no-tests"] => verify(&root, false),
        ["fix"] => fix(&root),
        ["structure"] => structure_step(&root),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: this crate's parent directory.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
        .to_path_buf()
}

fn verify(root: &Path, tests: bool) -> Result<()> {
    step("format", cargo(root, &["fmt", "--all", "--", "--check"]))?;
    step("structure", structure_step(root))?;
    step(
        "clippy",
        cargo(
            root,
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        ),
    )?;
    step(
        "docs",
        run(Command::new(cargo_bin())
            .current_dir(root)
            .env("RUSTDOCFLAGS", "-D warnings")
            .args(["doc", "--workspace", "--no-deps", "--quiet"])),
    )?;
    if tests {
        // The README's test command, less the steps that install packages.
        step("build", cargo(root, &["build", "--workspace"]))?;
        step("tests", cargo(root, &["nextest", "run", "--workspace"]))?;
    }
    println!("verify: all steps passed");
    Ok(())
}

fn fix(root: &Path) -> Result<()> {
    step("format", cargo(root, &["fmt", "--all"]))?;
    step(
        "clippy --fix",
        cargo(
            root,
            &[
                "clippy",
                "--fix",
                "--allow-dirty",
                "--allow-staged",
                "--workspace",
                "--all-targets",
            ],
        ),
    )?;
    step("format", cargo(root, &["fmt", "--all"]))
}

fn structure_step(root: &Path) -> Result<()> {
    let problems = structure::check(root)?;
    if problems.is_empty() {
        return Ok(());
    }
    for p in &problems {
        eprintln!("  {p}");
    }
    bail!("{} structure rule(s) broken", problems.len())
}

fn step(name: &str, result: Result<()>) -> Result<()> {
    result.with_context(|| format!("step `{name}` failed"))?;
    println!("verify: {name} ok");
    Ok(())
}

fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn cargo(root: &Path, args: &[&str]) -> Result<()> {
    run(Command::new(cargo_bin()).current_dir(root).args(args))
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} exited with {status}");
    }
    Ok(())
}
