//! The `rxc` binary against a tiny axum server on `$RXD_DIR/unix.socket`: what it prints on
//! stdout, `Error: ...` on stderr with exit code 1, and the requests it sends.

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use rxd_api::Response as Envelope;
use serde_json::{json, Value};

type Seen = Arc<Mutex<Vec<Value>>>;

fn member(name: &str, roles: &[&str]) -> Value {
    json!({"roles":roles,"failure_domain":"default","description":"","config":{},"groups":["default"],
           "server_name":name,"url":format!("https://127.0.1.{}:8443", &name[4..]),"database":true,
           "status":"Online","message":"Fully operational","architecture":"x86_64"})
}

fn router(seen: Seen) -> Router {
    Router::new()
        .route(
            "/1.0",
            get(|| async {
                Json(Envelope::sync(json!({
                    "config":{"core.https_address":"127.0.1.1:8443","core.trust_password":true},
                    "api_extensions":[],"api_status":"stable","api_version":"1.0","auth":"trusted",
                    "public":false,"auth_methods":["tls"]})))
            })
            .put(
                |State(seen): State<Seen>, Json(body): Json<Value>| async move {
                    seen.lock().unwrap().push(body);
                    Json(Envelope::sync(json!({})))
                },
            ),
        )
        .route(
            "/1.0/cluster",
            get(|| async {
                Json(Envelope::sync(
                    json!({"server_name":"node1","enabled":true,"member_config":[]}),
                ))
            }),
        )
        .route(
            "/1.0/cluster/members",
            get(|| async {
                Json(Envelope::sync(json!([
                    member("node10", &["database"]),
                    member("node2", &["database-standby"]),
                    member("node1", &["database-leader", "database"]),
                ])))
            }),
        )
        .route(
            "/1.0/cluster/members/{name}",
            get(|Path(_name): Path<String>| async {
                (
                    StatusCode::NOT_FOUND,
                    Json(Envelope::error(404, "Cluster member not found")),
                )
                    .into_response()
            }),
        )
        .with_state(seen)
}

struct Env {
    dir: tempfile::TempDir,
    seen: Seen,
}

async fn start() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::UnixListener::bind(dir.path().join("unix.socket")).unwrap();
    let seen = Seen::default();
    let app = router(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Env { dir, seen }
}

async fn rxc(env: &Env, args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_rxc"))
        .args(args)
        .env("RXD_DIR", env.dir.path())
        .env("RXC_CONF", env.dir.path().join("conf"))
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test]
async fn cluster_list_sorts_members_naturally() {
    let env = start().await;
    let (code, out, err) = rxc(&env, &["cluster", "list", "-f", "csv"]).await;
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(
        out,
        "node1,https://127.0.1.1:8443,\"database-leader,database\",x86_64,default,,ONLINE,Fully operational\n\
         node2,https://127.0.1.2:8443,database-standby,x86_64,default,,ONLINE,Fully operational\n\
         node10,https://127.0.1.10:8443,database,x86_64,default,,ONLINE,Fully operational\n"
    );
}

#[tokio::test]
async fn api_errors_print_like_lxc() {
    let env = start().await;
    let (code, out, err) = rxc(&env, &["cluster", "show", "nope"]).await;
    assert_eq!(code, 1);
    assert_eq!(out, "");
    assert_eq!(err, "Error: Cluster member not found\n");

    let (code, _, err) = rxc(&env, &["cluster", "list", "elsewhere:"]).await;
    assert_eq!(code, 1);
    assert_eq!(err, "Error: The remote \"elsewhere\" doesn't exist\n");
}

#[tokio::test]
async fn config_set_keeps_hidden_keys_as_true() {
    let env = start().await;
    let (code, _, err) = rxc(&env, &["config", "set", "user.foo", "bar"]).await;
    assert_eq!((code, err.as_str()), (0, ""));
    let (code, _, _) = rxc(&env, &["config", "set", "user.a=1", "user.b=2"]).await;
    assert_eq!(code, 0);
    let seen = env.seen.lock().unwrap();
    assert_eq!(
        seen[0],
        json!({"config":{"core.https_address":"127.0.1.1:8443","core.trust_password":true,"user.foo":"bar"}})
    );
    assert_eq!(seen[1]["config"]["user.b"], "2");
}

#[tokio::test]
async fn missing_daemon_names_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_rxc"))
        .args(["config", "show"])
        .env("RXD_DIR", dir.path())
        .env("RXC_CONF", dir.path().join("conf"))
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("Error: Cannot connect to "), "{err}");
    assert!(err.contains("unix.socket"), "{err}");
}
