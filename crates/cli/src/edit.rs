//! YAML editing as `lxc ... edit` does it: piped stdin is the new content; on a terminal the
//! current content goes through `$VISUAL`/`$EDITOR` (default `vi`).

use std::io::{IsTerminal, Read};

use serde::de::DeserializeOwned;

use crate::{CliError, Result};

/// `current` edited (as [`new_content`]) and parsed into `U`, with the ETag to send: lxc sends
/// none for piped input, and the one it read for an editor session.
pub fn edit<'e, T: serde::Serialize, U: DeserializeOwned>(
    template: &str,
    current: &T,
    etag: &'e str,
) -> Result<(U, Option<&'e str>)> {
    let piped = !std::io::stdin().is_terminal();
    let text = new_content(template, &crate::yaml::to_string(current)?)?;
    Ok((parse(&text)?, (!piped).then_some(etag)))
}

/// The new YAML text: all of stdin when it is not a terminal, else what the user saved in the
/// editor (lines starting with `#` are comments to YAML anyway).
pub fn new_content(template: &str, current_yaml: &str) -> Result<String> {
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
        return Ok(text);
    }
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".into());
    let path = std::env::temp_dir().join(format!("rxc_editor_{}.yaml", std::process::id()));
    let io = |source| CliError::Io {
        path: path.clone(),
        source,
    };
    std::fs::write(&path, format!("{template}\n\n{current_yaml}")).map_err(io)?;
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
