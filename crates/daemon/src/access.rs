//! Who is calling, and what they may do. The unix socket is trusted; on HTTPS the peer's
//! certificate fingerprint decides: a trusted client, a restricted client (confined to the
//! projects its certificate lists, as in LXD), a cluster member (its `server.crt` is in the trust
//! store as type `server`), a `metrics` certificate (`/1.0/metrics` only), or untrusted (no certificate, or an unknown one).

use crate::error::ApiError;

/// How a connection reached us; attached to every request by the listener.
#[derive(Debug, Clone)]
pub enum Peer {
    /// The unix socket.
    Unix,
    /// HTTPS from `address`, with the client certificate's DER if one was presented.
    Tls {
        /// Remote socket address.
        address: String,
        /// The client certificate, DER.
        cert_der: Option<Vec<u8>>,
    },
}

/// What the caller turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Local root, or a client whose certificate is trusted without restriction.
    Trusted,
    /// A client whose certificate is restricted to these projects.
    Restricted(Vec<String>),
    /// Another member of this cluster.
    Member,
    /// A certificate of type `metrics`: it reads `/1.0/metrics` and nothing else.
    Metrics,
    /// Anyone else.
    Untrusted,
}

/// The caller of a request: the connection and the trust decided for it.
#[derive(Debug, Clone)]
pub struct Caller {
    /// How it connected.
    pub peer: Peer,
    /// What it may do.
    pub trust: Trust,
    /// The original caller a member forwarded this request for (LXD's `X-LXD-forwarded-*`
    /// headers), believed only from a member.
    pub forwarded: Option<rxd_api::Requestor>,
}

/// The trust a certificate of the trust store gives its holder.
pub fn trust_of_certificate(cert: &rxd_db::tables::Certificate) -> Trust {
    match cert.cert_type.as_str() {
        "server" => Trust::Member,
        "metrics" => Trust::Metrics,
        "client" if cert.restricted => Trust::Restricted(cert.projects.clone()),
        "client" => Trust::Trusted,
        _ => Trust::Untrusted,
    }
}

impl Caller {
    /// The caller of a request from `peer` with `trust`; a member's request may name the caller
    /// it forwards for in `headers`.
    pub fn new(peer: Peer, trust: Trust, headers: &axum::http::HeaderMap) -> Caller {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let forwarded = if trust == Trust::Member {
            header(rxd_client::FORWARDED_USERNAME).map(|username| rxd_api::Requestor {
                username,
                protocol: header(rxd_client::FORWARDED_PROTOCOL).unwrap_or_default(),
                address: header(rxd_client::FORWARDED_ADDRESS).unwrap_or_default(),
            })
        } else {
            None
        };
        Caller {
            peer,
            trust,
            forwarded,
        }
    }

    /// Whether it may use the public API at all (a restricted client included).
    pub fn is_trusted(&self) -> bool {
        matches!(
            self.trust,
            Trust::Trusted | Trust::Restricted(_) | Trust::Member
        )
    }

    /// Whether it may use the whole public API: local root, an unrestricted client or a member.
    pub fn is_admin(&self) -> bool {
        matches!(self.trust, Trust::Trusted | Trust::Member)
    }

    /// The projects of a restricted client; `None` for anyone else.
    pub fn restricted_to(&self) -> Option<&[String]> {
        match &self.trust {
            Trust::Restricted(projects) => Some(projects),
            _ => None,
        }
    }

    /// Whether it may use `project`. rxd has the `default` project only, so a restricted client
    /// naming another one reaches nothing.
    pub fn may_use_project(&self, project: &str) -> bool {
        match &self.trust {
            Trust::Restricted(projects) => {
                project == DEFAULT_PROJECT && projects.iter().any(|p| p == project)
            }
            Trust::Trusted | Trust::Member => true,
            Trust::Metrics | Trust::Untrusted => false,
        }
    }

    /// The fingerprint of the client certificate, for an HTTPS caller that presented one.
    pub fn fingerprint(&self) -> Option<String> {
        match &self.peer {
            Peer::Tls {
                cert_der: Some(der),
                ..
            } => Some(rxd_tls::fingerprint_der(der)),
            _ => None,
        }
    }

    /// The requestor block of lifecycle events.
    pub fn requestor(&self) -> rxd_api::Requestor {
        if let Some(original) = &self.forwarded {
            return original.clone();
        }
        match &self.peer {
            Peer::Unix => rxd_api::Requestor {
                username: "root".into(),
                protocol: "unix".into(),
                address: "@".into(),
            },
            Peer::Tls { address, .. } => rxd_api::Requestor {
                username: self.fingerprint().unwrap_or_default(),
                protocol: if self.trust == Trust::Member {
                    "cluster".into()
                } else {
                    "tls".into()
                },
                address: address.clone(),
            },
        }
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::internal("Request reached a handler without a caller"))
    }
}

/// The project every request is in unless `?project=` says otherwise, and the only one.
pub const DEFAULT_PROJECT: &str = "default";

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, even untrusted HTTPS callers.
    Public,
    /// Any trusted caller, restricted clients included; the handler shows a restricted client
    /// only what is its own or in its projects.
    Authenticated,
    /// Trusted callers, and restricted clients whose projects include the request's
    /// (`?project=`, else `default`).
    Project,
    /// Local root, unrestricted clients and members.
    Admin,
    /// Other members only (the internal API), or local root.
    Member,
    /// Local root on the unix socket only (the formation window's own endpoint).
    Local,
    /// `/1.0/metrics`: local root, unrestricted clients, members and `metrics` certificates.
    Metrics,
    /// Anyone on HTTPS, untrusted callers included, and only while this server's formation
    /// window named in the path is open, neither aborted nor committed (the router checks the
    /// window; the exchange itself decides the rest). Never the unix socket.
    Formation,
}

/// The project a request is in: `?project=`, else `default`.
pub fn project_of(uri: &axum::http::Uri) -> String {
    axum::extract::Query::<std::collections::HashMap<String, String>>::try_from_uri(uri)
        .ok()
        .and_then(|q| q.0.get("project").cloned())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| DEFAULT_PROJECT.to_string())
}

/// Whether `caller` may call an endpoint whose rule is `access`, for a request in `project`.
pub fn allows(access: Access, caller: &Caller, project: &str) -> bool {
    match access {
        Access::Public => true,
        Access::Authenticated => caller.is_trusted(),
        Access::Project => caller.may_use_project(project),
        Access::Admin => caller.is_admin(),
        Access::Metrics => caller.is_admin() || caller.trust == Trust::Metrics,
        Access::Member => caller.trust == Trust::Member || matches!(caller.peer, Peer::Unix),
        Access::Local => matches!(caller.peer, Peer::Unix),
        Access::Formation => matches!(caller.peer, Peer::Tls { .. }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(peer: Peer, trust: Trust) -> Caller {
        Caller {
            peer,
            trust,
            forwarded: None,
        }
    }

    fn tls(trust: Trust) -> Caller {
        caller(
            Peer::Tls {
                address: "127.0.0.1:1".into(),
                cert_der: Some(vec![1]),
            },
            trust,
        )
    }

    #[test]
    fn only_a_member_names_the_caller_it_forwards_for() {
        let peer = Peer::Tls {
            address: "127.0.0.1:1".into(),
            cert_der: Some(vec![1]),
        };
        let mut headers = axum::http::HeaderMap::new();
        for (name, value) in [
            (rxd_client::FORWARDED_USERNAME, "root"),
            (rxd_client::FORWARDED_PROTOCOL, "unix"),
            (rxd_client::FORWARDED_ADDRESS, "@"),
        ] {
            headers.insert(name, value.parse().unwrap());
        }
        let member = Caller::new(peer.clone(), Trust::Member, &headers);
        assert_eq!(member.requestor().username, "root");
        assert_eq!(member.requestor().protocol, "unix");
        assert_eq!(member.requestor().address, "@");
        for trust in [Trust::Trusted, Trust::Untrusted] {
            let client = Caller::new(peer.clone(), trust, &headers);
            assert_eq!(
                client.requestor().protocol,
                "tls",
                "not believed from a client"
            );
            assert_eq!(client.requestor().address, "127.0.0.1:1");
        }
        let plain = Caller::new(peer, Trust::Member, &axum::http::HeaderMap::new());
        assert_eq!(plain.requestor().protocol, "cluster");
    }

    #[test]
    fn each_rule_lets_in_exactly_its_callers() {
        let unix = caller(Peer::Unix, Trust::Trusted);
        let trusted = tls(Trust::Trusted);
        let in_default = tls(Trust::Restricted(vec!["default".into()]));
        let in_other = tls(Trust::Restricted(vec!["other".into()]));
        let nowhere = tls(Trust::Restricted(vec![]));
        let member = tls(Trust::Member);
        let untrusted = tls(Trust::Untrusted);
        let all = [
            &unix,
            &trusted,
            &in_default,
            &in_other,
            &nowhere,
            &member,
            &untrusted,
        ];
        // One row per rule: whether each caller above may call it, in project "default".
        let cases = [
            (Access::Public, [true, true, true, true, true, true, true]),
            (
                Access::Authenticated,
                [true, true, true, true, true, true, false],
            ),
            (
                Access::Project,
                [true, true, true, false, false, true, false],
            ),
            (
                Access::Admin,
                [true, true, false, false, false, true, false],
            ),
            (
                Access::Member,
                [true, false, false, false, false, true, false],
            ),
            (
                Access::Local,
                [true, false, false, false, false, false, false],
            ),
            (
                Access::Formation,
                [false, true, true, true, true, true, true],
            ),
        ];
        for (access, expected) in cases {
            for (c, want) in all.iter().zip(expected) {
                assert_eq!(allows(access, c, "default"), want, "{access:?} {c:?}");
            }
        }
        // rxd has the default project only: naming another reaches nothing for a restricted client.
        assert!(!allows(Access::Project, &in_other, "other"));
        assert!(allows(Access::Project, &trusted, "other"));
    }

    #[test]
    fn the_project_is_the_query_parameter_else_default() {
        let uri = |s: &str| s.parse::<axum::http::Uri>().unwrap();
        assert_eq!(project_of(&uri("/1.0/profiles")), "default");
        assert_eq!(project_of(&uri("/1.0/profiles?project=")), "default");
        assert_eq!(
            project_of(&uri("/1.0/profiles?recursion=1&project=p%201")),
            "p 1"
        );
    }
}
