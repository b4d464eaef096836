//! `rxc config show|get|set|unset` (server configuration) and `rxc config trust add|list|remove`.

use rxd_api::{Certificate, CertificateAddToken, CertificatesPost, ServerPut};
use serde_json::Value;

use crate::args::{ConfigCmd, TrustCmd};
use crate::output::{self, Format};
use crate::{print, CliError, Ctx, Result};

/// Splits `[remote:] rest...`: a first argument ending in `:` names the remote.
fn split_remote(args: &[String]) -> (String, &[String]) {
    match args.split_first() {
        Some((first, rest)) if first.ends_with(':') && !rest.is_empty() => (first.clone(), rest),
        _ => (String::new(), args),
    }
}

/// The value as `lxc config get` prints it: strings bare, `true` for hidden keys.
fn display_value(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

pub async fn run(ctx: &Ctx, cmd: ConfigCmd) -> Result<()> {
    match cmd {
        ConfigCmd::Show { remote } => {
            let (client, _, _) = ctx.resolve_opt(&remote)?;
            let (server, _) = client.server().await?;
            let put = ServerPut {
                config: server.config.unwrap_or_default(),
            };
            print(&crate::yaml::to_string(&put)?)
        }
        ConfigCmd::Get { args } => {
            let (remote, rest) = split_remote(&args);
            let [key] = rest else {
                return Err(CliError::BadArgument {
                    message: "Invalid number of arguments".into(),
                });
            };
            let (client, _, _) = ctx.resolve(&remote)?;
            let (server, _) = client.server().await?;
            let config = server.config.unwrap_or_default();
            print(&format!("{}\n", display_value(config.get(key))))
        }
        ConfigCmd::Set { args } => {
            let (remote, rest) = split_remote(&args);
            let pairs = match rest {
                [key, value] if !key.contains('=') => vec![(key.clone(), value.clone())],
                _ => crate::parse_key_values(rest)?,
            };
            let (client, _, _) = ctx.resolve(&remote)?;
            let (server, etag) = client.server().await?;
            let mut put = ServerPut {
                config: server.config.unwrap_or_default(),
            };
            for (k, v) in pairs {
                put.config.insert(k, Value::String(v));
            }
            Ok(client.update_server(&put, Some(&etag)).await?)
        }
        ConfigCmd::Unset { args } => {
            let (remote, rest) = split_remote(&args);
            let [key] = rest else {
                return Err(CliError::BadArgument {
                    message: "Invalid number of arguments".into(),
                });
            };
            let (client, _, _) = ctx.resolve(&remote)?;
            let (server, etag) = client.server().await?;
            let mut put = ServerPut {
                config: server.config.unwrap_or_default(),
            };
            // lxc 5.0 sends the PUT even when the key was not set.
            put.config.remove(key);
            Ok(client.update_server(&put, Some(&etag)).await?)
        }
        ConfigCmd::Trust(cmd) => trust(ctx, cmd).await,
    }
}

async fn trust(ctx: &Ctx, cmd: TrustCmd) -> Result<()> {
    match cmd {
        TrustCmd::List { remote } => {
            let (client, _, _) = ctx.resolve_opt(&remote)?;
            let certs = client.certificates().await?;
            print(&trust_list_text(ctx.format, &certs)?)
        }
        TrustCmd::Remove { fingerprint } => {
            let (client, _, fp) = ctx.resolve(&fingerprint)?;
            Ok(client.delete_certificate(&fp).await?)
        }
        TrustCmd::Add {
            name,
            flag_name,
            restricted,
            projects,
        } => {
            let limits = Restriction {
                restricted,
                projects,
            };
            let arg = name.unwrap_or_default();
            // A certificate file adds that certificate; anything else is a client name
            // for which a certificate-add token is made.
            if !arg.is_empty() && std::path::Path::new(&arg).is_file() {
                return add_certificate_file(ctx, &arg, flag_name, limits).await;
            }
            let (client, _, mut client_name) = ctx.resolve(&arg)?;
            if let Some(flag) = flag_name {
                client_name = flag;
            }
            if client_name.is_empty() {
                print("Please provide client name: ")?;
                client_name = crate::read_line()?;
            }
            if client_name.is_empty() {
                return Err(CliError::BadArgument {
                    message: "A client name must be provided".into(),
                });
            }
            let post = CertificatesPost {
                name: client_name.clone(),
                cert_type: "client".into(),
                token: true,
                restricted: limits.restricted,
                projects: Some(limits.projects),
                ..Default::default()
            };
            let op = client.create_certificate_token(&post).await?;
            let token = certificate_add_token(op.metadata.as_ref())?;
            if !ctx.quiet {
                print(&format!("Client {client_name} certificate add token:\n"))?;
            }
            print(&format!("{}\n", token.encode()))
        }
    }
}

/// `--restricted` and `--projects` of `config trust add`.
struct Restriction {
    restricted: bool,
    projects: Vec<String>,
}

async fn add_certificate_file(
    ctx: &Ctx,
    path: &str,
    name: Option<String>,
    limits: Restriction,
) -> Result<()> {
    let (client, _, _) = ctx.resolve("")?;
    let pem = std::fs::read_to_string(path).map_err(|source| CliError::Io {
        path: path.into(),
        source,
    })?;
    let der = rxd_tls::pem_to_der(&pem)?;
    use base64::Engine;
    let name = name.unwrap_or_else(|| {
        std::path::Path::new(path)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let post = CertificatesPost {
        name,
        cert_type: "client".into(),
        certificate: base64::engine::general_purpose::STANDARD.encode(der),
        restricted: limits.restricted,
        projects: Some(limits.projects),
        ..Default::default()
    };
    client.add_certificate(&post).await?;
    Ok(())
}

/// The metadata of a certificate-add token operation: LXD 5.0 nests the client name in the
/// original `request`, later versions add `clientName` and `expiresAt`.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct AddTokenMetadata {
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    request: Option<AddTokenRequest>,
    fingerprint: String,
    addresses: Vec<String>,
    secret: String,
    #[serde(default)]
    expires_at: Option<String>,
}

#[derive(serde::Deserialize)]
struct AddTokenRequest {
    #[serde(default)]
    name: String,
}

/// lxc's `ToCertificateAddToken`.
pub fn certificate_add_token(meta: Option<&Value>) -> Result<CertificateAddToken> {
    let bad = |reason: String| CliError::Token {
        what: "certificate add token",
        reason,
    };
    let meta = meta.ok_or_else(|| bad("Operation has no metadata".into()))?;
    let m: AddTokenMetadata =
        serde_json::from_value(meta.clone()).map_err(|e| bad(e.to_string()))?;
    let client_name = m
        .client_name
        .or(m.request.map(|r| r.name))
        .ok_or_else(|| bad("missing field `clientName`".into()))?;
    Ok(CertificateAddToken {
        client_name,
        fingerprint: m.fingerprint,
        addresses: m.addresses,
        secret: m.secret,
        expires_at: m
            .expires_at
            .unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
    })
}

/// Go's `"Jan 2, 2006 at 3:04pm (MST)"` for an RFC 3339 UTC time.
fn go_trust_date(rfc3339: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(rfc3339) {
        Ok(t) => t
            .with_timezone(&chrono::Utc)
            .format("%b %-d, %Y at %-I:%M%P (UTC)")
            .to_string(),
        Err(_) => rfc3339.to_string(),
    }
}

/// `config trust list` in every format.
pub fn trust_list_text(format: Format, certs: &[Certificate]) -> Result<String> {
    let mut rows = Vec::new();
    for c in certs {
        let info = rxd_tls::pem_to_der(&c.put.certificate)
            .ok()
            .and_then(|der| rxd_tls::CertInfo::from_der(&der).ok());
        let (cn, issued, expires) = match info {
            Some(i) => (
                i.subject_common_name,
                go_trust_date(&i.not_before),
                go_trust_date(&i.not_after),
            ),
            None => Default::default(),
        };
        rows.push(vec![
            c.put.cert_type.clone(),
            c.put.name.clone(),
            cn,
            c.fingerprint.chars().take(12).collect(),
            issued,
            expires,
        ]);
    }
    output::sort_naturally(&mut rows);
    output::render(
        format,
        &[
            "TYPE",
            "NAME",
            "COMMON NAME",
            "FINGERPRINT",
            "ISSUE DATE",
            "EXPIRY DATE",
        ],
        &rows,
        certs,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_prefix_is_split_off() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let a = args(&["c1:", "core.https_address"]);
        let (r, rest) = split_remote(&a);
        assert_eq!((r.as_str(), rest.len()), ("c1:", 1));
        let a = args(&["core.https_address", "127.0.0.1:8443"]);
        let (r, rest) = split_remote(&a);
        assert_eq!((r.as_str(), rest.len()), ("", 2));
    }

    #[test]
    fn values_print_as_lxc_config_get() {
        assert_eq!(display_value(Some(&Value::Bool(true))), "true");
        assert_eq!(display_value(Some(&Value::String("a".into()))), "a");
        assert_eq!(display_value(None), "");
        assert_eq!(display_value(Some(&serde_json::json!(3))), "3");
    }

    #[test]
    fn trust_dates_use_gos_layout() {
        assert_eq!(
            go_trust_date("2026-11-26T15:17:26Z"),
            "Nov 26, 2026 at 3:17pm (UTC)"
        );
        assert_eq!(
            go_trust_date("2036-11-23T03:05:00Z"),
            "Nov 23, 2036 at 3:05am (UTC)"
        );
    }

    #[test]
    fn trust_list_row_matches_lxc() {
        let cert = rxd_tls::generate("vm").unwrap();
        let info = rxd_tls::CertInfo::from_der(cert.cert_der()).unwrap();
        let certs = vec![Certificate {
            put: rxd_api::CertificatePut {
                name: "node1".into(),
                cert_type: "server".into(),
                certificate: cert.cert_pem.clone(),
                ..Default::default()
            },
            fingerprint: cert.fingerprint(),
        }];
        let csv = trust_list_text(Format::Csv, &certs).unwrap();
        // Same shape as `lxc config trust list -f csv`:
        // server,node1,root@vm,383bd02af653,"Nov 26, 2026 at 3:17pm (UTC)","Nov 23, 2036 at 3:17pm (UTC)"
        assert_eq!(
            csv,
            format!(
                "server,node1,root@vm,{},\"{}\",\"{}\"\n",
                &cert.fingerprint()[..12],
                go_trust_date(&info.not_before),
                go_trust_date(&info.not_after)
            )
        );
        let table = trust_list_text(Format::Table, &certs).unwrap();
        assert!(table.starts_with("+--------+-------+-------------+--------------+"));
        assert!(table.contains("|  TYPE  | NAME  | COMMON NAME | FINGERPRINT  |"));
    }

    #[test]
    fn certificate_add_token_from_metadata() {
        let meta = serde_json::json!({"clientName":"laptop","fingerprint":"ab","addresses":["127.0.0.1:8443"],"secret":"cd","expiresAt":"2026-11-26T16:47:49Z"});
        let t = certificate_add_token(Some(&meta)).unwrap();
        assert_eq!(t.client_name, "laptop");
        assert_eq!(CertificateAddToken::decode(&t.encode()).unwrap(), t);
        assert!(certificate_add_token(None).is_err());

        // LXD 5.0.2's metadata, and the token `lxc config trust add --name laptop3` printed.
        let meta = serde_json::json!({"addresses":["127.0.77.1:8443"],
            "fingerprint":"edecf8a802bf69a61bfae98387606bc88a4766a2877fa1104d7557fca8607398",
            "request":{"certificate":"","name":"laptop3","password":"","projects":[],"restricted":false,"token":true,"type":"client"},
            "secret":"2f817257e4cc7bca523655ea5ead3a7d7e1b665d5a2bc7f44bd43110fa05fa4b"});
        assert_eq!(
            certificate_add_token(Some(&meta)).unwrap().encode(),
            "eyJjbGllbnRfbmFtZSI6ImxhcHRvcDMiLCJmaW5nZXJwcmludCI6ImVkZWNmOGE4MDJiZjY5YTYxYmZhZTk4Mzg3NjA2YmM4OGE0NzY2YTI4NzdmYTExMDRkNzU1N2ZjYTg2MDczOTgiLCJhZGRyZXNzZXMiOlsiMTI3LjAuNzcuMTo4NDQzIl0sInNlY3JldCI6IjJmODE3MjU3ZTRjYzdiY2E1MjM2NTVlYTVlYWQzYTdkN2UxYjY2NWQ1YTJiYzdmNDRiZDQzMTEwZmEwNWZhNGIiLCJleHBpcmVzX2F0IjoiMDAwMS0wMS0wMVQwMDowMDowMFoifQ=="
        );
    }
}
