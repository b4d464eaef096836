//! The rule for names users give to profiles, storage pools and cluster members. Such a name
//! becomes a URL segment, a file name under the data directory or a label, so it keeps to a
//! short, portable alphabet. LXD refuses slashes, `.` and `..` (and non-ASCII pool names);
//! rxd also refuses what a client would encode or normalise away (`?`, `#`, `%`, NUL,
//! invisible characters).

/// The longest name, as for LXD's host and device names.
pub const MAX_LEN: usize = 63;

/// Checks `name` for a resource of `kind` ("profile", "storage pool", ...); the error is a
/// sentence naming the rule.
pub fn check(kind: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("No name provided".into());
    }
    let reason = if name.chars().count() > MAX_LEN {
        format!("names must be 1 to {MAX_LEN} characters long")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        "names can only contain letters, digits, dashes, underscores and full stops".into()
    } else if name.starts_with(['-', '.']) {
        "names must not start with a dash or a full stop".into()
    } else {
        return Ok(());
    };
    Err(format!("Invalid {kind} name {}: {reason}", shown(name)))
}

/// The name quoted, or only its length when it is too long to repeat.
fn shown(name: &str) -> String {
    if name.chars().count() > MAX_LEN {
        format!("({} characters)", name.chars().count())
    } else {
        format!("{name:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rule() {
        let long = "a".repeat(MAX_LEN);
        let too_long = "a".repeat(10_000);
        let cases: &[(&str, bool)] = &[
            ("default", true),
            ("my-profile_2.x", true),
            ("Node1", true),
            (&long, true),
            ("", false),
            (".", false),
            ("..", false),
            (".hidden", false),
            ("-x", false),
            ("a/b", false),
            ("../../victim", false),
            ("a\0b", false),
            ("a\u{200b}b", false),
            ("a?b", false),
            ("a#b", false),
            ("a%2fb", false),
            ("a b", false),
            ("a\n", false),
            ("é", false),
            (&too_long, false),
        ];
        for (name, ok) in cases {
            assert_eq!(check("profile", name).is_ok(), *ok, "{name:?}");
        }
    }

    #[test]
    fn refusals_name_the_rule_and_not_a_huge_name() {
        let err = check("profile", "a?b").unwrap_err();
        assert_eq!(
            err,
            "Invalid profile name \"a?b\": names can only contain letters, digits, dashes, underscores and full stops"
        );
        let err = check("profile", &"a".repeat(10_000)).unwrap_err();
        assert_eq!(
            err,
            "Invalid profile name (10000 characters): names must be 1 to 63 characters long"
        );
        assert_eq!(check("profile", "").unwrap_err(), "No name provided");
    }
}
