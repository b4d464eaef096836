//! YAML editing as `lxc ... edit` does it: piped stdin is the new content; on a terminal the
//! current content goes through `$VISUAL`/`$EDITOR` (default `vi`), and an edit that does not
//! parse, or that the server refuses, is offered to the editor again.
//!
//! ```text
//!  stdin piped ──> parse ──> apply (no ETag) ──> done, or the error
//!  terminal ─────> editor ──> parse ──> apply (the ETag read) ──> done
//!                     ^          └─ error ─┴─> "Config parsing error: ..." + enter ─┐
//!                     └─────────────── the text as the user left it ─────────────────┘
//! ```

use std::future::Future;
use std::io::{IsTerminal, Read};

use serde::de::DeserializeOwned;

use crate::{CliError, Result};

/// Edits `current` and hands the parsed result to `apply` with the ETag to send: none for
/// piped input (as lxc), the one read for an editor session. In an editor session a parse error
/// or a refusal from `apply` is printed and, after the user presses enter, the editor opens
/// again on the text as they left it; ctrl+c aborts.
pub async fn edit<T, U, F, Fut>(template: &str, current: &T, etag: &str, mut apply: F) -> Result<()>
where
    T: serde::Serialize,
    U: DeserializeOwned,
    F: FnMut(U, Option<String>) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut text = String::new();
        stdin
            .lock()
            .read_to_string(&mut text)
            .map_err(|source| CliError::Terminal {
                context: "Cannot read from stdin",
                source,
            })?;
        return apply(parse(&text)?, None).await;
    }
    let mut text = format!("{template}\n\n{}", crate::yaml::to_string(current)?);
    loop {
        text = run_editor(&text)?;
        let outcome = match parse(&text) {
            Ok(edited) => apply(edited, Some(etag.to_string())).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => return Ok(()),
            Err(e) => {
                eprintln!("Config parsing error: {e}");
                crate::print("Press enter to open the editor again or ctrl+c to abort change\n")?;
                wait_for_enter()?;
            }
        }
    }
}

/// Reads one byte of stdin, as lxc does; end of input aborts the change.
fn wait_for_enter() -> Result<()> {
    let mut byte = [0u8; 1];
    let read = std::io::stdin()
        .lock()
        .read(&mut byte)
        .map_err(|source| CliError::Terminal {
            context: "Cannot read from stdin",
            source,
        })?;
    if read == 0 {
        return Err(CliError::Aborted { message: "EOF" });
    }
    Ok(())
}

/// `text` after the user saved it in `$VISUAL`/`$EDITOR`.
fn run_editor(text: &str) -> Result<String> {
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".into());
    let path = std::env::temp_dir().join(format!("rxc_editor_{}.yaml", std::process::id()));
    let io = |source| CliError::Io {
        path: path.clone(),
        source,
    };
    std::fs::write(&path, text).map_err(io)?;
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&path)
        .status()
        .map_err(|source| CliError::Terminal {
            context: "Cannot start the editor",
            source,
        })?;
    let text = std::fs::read_to_string(&path).map_err(io);
    let _ = std::fs::remove_file(&path);
    if !status.success() {
        return Err(CliError::Aborted {
            message: "The editor exited with an error",
        });
    }
    text
}

/// Parses edited YAML into `T`, ignoring fields `T` does not have (as yaml.v2 does, so the
/// output of `show` can be piped into `edit`).
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T> {
    if text.trim().is_empty() {
        return crate::yaml::from_str("{}");
    }
    crate::yaml::from_str(text)
}

/// Config values from YAML may be numbers or booleans; LXD's maps hold strings.
pub fn stringify_config(
    config: std::collections::BTreeMap<String, serde_json::Value>,
) -> std::collections::BTreeMap<String, String> {
    config
        .into_iter()
        .map(|(k, v)| {
            let s = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            (k, s)
        })
        .collect()
}
