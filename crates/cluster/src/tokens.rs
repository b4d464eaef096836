//! Join tokens: issued by any member for a new member's name, and used up once, through the
//! log, by the server that presents one (`POST /1.0/certificates`). Certificate-add tokens
//! are consumed the same way. Tokens live in the replicated database (invariant 6).
//!
//! ```text
//!  POST /1.0/cluster/members {server_name} ─> issue_join: name free, older token of the
//!      name deleted, online members' addresses, cluster fingerprint ─> AddToken
//!  POST /1.0/certificates {trust_token} ─> exists (local replica, else a linearizable read;
//!      a guess writes nothing) ─> consume: ConsumeToken through the log
//! ```

use rand::RngCore;
use rxd_api::config_keys as config;
use rxd_db::tables::{self, MemberState, Token};
use rxd_db::{ApplyError, Command};

use crate::{Error, Host, Result, Status};

/// A new 32-byte secret, hex.
pub fn new_secret() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// The expiry instant `expiry` (LXD's expression) from now, RFC 3339.
pub fn expires_at(expiry: &str) -> Result<String> {
    // A value stored before expiries were bounded is refused here rather than overflowing.
    let secs = config::parse_expiry(expiry).map_err(Error::internal)?;
    let at = chrono::TimeDelta::try_seconds(secs)
        .and_then(|d| chrono::Utc::now().checked_add_signed(d))
        .ok_or_else(|| Error::internal(format!("Invalid expiry expression {expiry:?}")))?;
    Ok(at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
}

/// Issues a join token for a new member `name`, located at this member (`location`); an older
/// token for the same name is replaced, as in LXD.
pub async fn issue_join<H: Host + ?Sized>(d: &H, name: &str, location: String) -> Result<Token> {
    crate::bootstrap::validate_member_name(name)?;
    let (members, cluster_config, tokens) = d
        .db()
        .read(|c| Ok((tables::members(c)?, tables::config(c)?, tables::tokens(c)?)))
        .await?;
    // A member still `Pending` is a join that never finished: the same server may try again,
    // and its new attempt replaces the old one (see the accept step).
    if members
        .iter()
        .any(|m| m.name == name && m.state != MemberState::Pending)
    {
        // LXD hands out a token that can never work; rxd says why at once.
        return Err(Error::new(
            Status::Conflict,
            format!("The cluster already has a member with name: {name}"),
        ));
    }
    for old in tokens.iter().filter(|t| t.kind == "join" && t.name == name) {
        d.db()
            .propose(Command::DeleteToken { id: old.id.clone() })
            .await??;
    }
    let t = crate::heartbeat::threshold(d).await;
    let addresses: Vec<String> = members
        .iter()
        .filter(|m| crate::heartbeat::is_online(d, m, t))
        .map(|m| m.address.clone())
        .collect();
    if addresses.is_empty() {
        return Err(Error::internal("There are no online cluster members"));
    }
    let fingerprint = d
        .cluster_cert()
        .map(|c| c.fingerprint())
        .unwrap_or_else(|| d.server_cert().fingerprint());
    let token = Token {
        id: uuid::Uuid::new_v4().to_string(),
        kind: "join".into(),
        name: name.to_string(),
        secret: new_secret(),
        fingerprint,
        addresses,
        created_at: now(),
        expires_at: expires_at(config::cluster_value(
            &cluster_config,
            "cluster.join_token_expiry",
        ))?,
        location,
        restricted_projects: None,
    };
    d.db().propose(Command::AddToken(token.clone())).await??;
    Ok(token)
}

/// The refusal of a secret that matches no token of `kind`.
pub fn no_matching(kind: &str) -> Error {
    Error::new(
        Status::Forbidden,
        if kind == "join" {
            "No matching cluster join operation found"
        } else {
            "No matching certificate add operation found"
        },
    )
}

/// Whether a token of `kind` for `name` with `secret` exists: first on the local replica, then,
/// for a token made a moment ago elsewhere that has not reached this member yet, through a
/// linearizable read. Neither writes anything.
pub async fn exists<H: Host + ?Sized>(d: &H, kind: &str, name: &str, secret: &str) -> Result<bool> {
    let query = |kind: &str, name: &str, secret: &str| {
        let (kind, name, secret) = (kind.to_string(), name.to_string(), secret.to_string());
        move |c: &rusqlite::Connection| tables::matching_token(c, &kind, &name, &secret)
    };
    if d.db()
        .read_local(query(kind, name, secret))
        .await?
        .is_some()
    {
        return Ok(true);
    }
    Ok(d.db().read(query(kind, name, secret)).await?.is_some())
}

/// Uses up the token of `kind` for `name` with `secret`, through the log. Call it only for a
/// secret [`exists`] found, so that a guess never becomes a raft write.
pub async fn consume<H: Host + ?Sized>(
    d: &H,
    kind: &str,
    name: &str,
    secret: &str,
) -> Result<Token> {
    let outcome = d
        .db()
        .propose(Command::ConsumeToken {
            kind: kind.into(),
            name: name.into(),
            secret: secret.into(),
            now: now(),
        })
        .await?;
    match outcome {
        Ok(rxd_db::Response::Token(t)) => Ok(*t),
        // The expired token was deleted all the same. LXD wraps this 403 in a 500; it is the
        // caller's stale token, so rxd keeps the 403.
        Ok(rxd_db::Response::TokenExpired) => Err(Error::new(
            Status::Forbidden,
            "Failed during search for join token operation: Token has expired",
        )),
        Ok(rxd_db::Response::Done | rxd_db::Response::Member(_)) => {
            Err(Error::internal("Token consumption returned no token"))
        }
        Err(ApplyError::NoMatchingToken) => Err(no_matching(kind)),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_are_fresh_hex() {
        let (a, b) = (super::new_secret(), super::new_secret());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn expiries_beyond_the_bound_are_errors_not_panics() {
        assert!(super::expires_at("3H").is_ok());
        assert!(super::expires_at("100y").is_ok());
        for expiry in ["9223372036854775807S", "300000000y", "101y"] {
            assert!(super::expires_at(expiry).is_err(), "{expiry}");
        }
    }
}
