//! The client against a tiny axum server on a unix socket in a temp dir: envelope decoding,
//! headers, typed calls, operations and the events websocket.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use rxd_api::{ClusterMemberPut, Response as Envelope, ServerPut, StoragePoolsPost};
use rxd_client::{Client, ClientError};
use serde_json::{json, Value};

/// What the server saw, for the assertions.
#[derive(Default)]
struct Seen {
    headers: Vec<(String, String)>,
    bodies: Vec<Value>,
    queries: Vec<String>,
}

type Shared = Arc<Mutex<Seen>>;

fn sync(v: Value) -> Json<Envelope> {
    Json(Envelope::sync(v))
}

fn operation(id: &str, status: &str, code: u16, metadata: Value) -> Value {
    json!({
        "id": id, "class": "token", "description": "Executing operation",
        "created_at": "2026-11-26T13:47:49.47865123Z", "updated_at": "2026-11-26T13:47:49.47865123Z",
        "status": status, "status_code": code, "resources": {"cluster": null},
        "metadata": metadata, "may_cancel": true, "err": "", "location": "node1"
    })
}

fn member(name: &str) -> Value {
    json!({"roles":["database-leader","database"],"failure_domain":"default","description":"",
           "config":{},"groups":["default"],"server_name":name,"url":"https://127.0.1.1:8443",
           "database":true,"status":"Online","message":"Fully operational","architecture":"x86_64"})
}

fn router(seen: Shared) -> Router {
    Router::new()
        .route(
            "/1.0",
            get(|| async {
                let server = json!({"config":{"core.trust_password":true},"api_extensions":["clustering"],
                    "api_status":"stable","api_version":"1.0","auth":"trusted","public":false,"auth_methods":["tls"]});
                let mut resp = sync(server).into_response();
                resp.headers_mut()
                    .insert("ETag", "\"42ae9bf5\"".parse().unwrap());
                resp
            })
            .put(
                |State(seen): State<Shared>, headers: HeaderMap, Json(body): Json<Value>| async move {
                    let mut s = seen.lock().unwrap();
                    for name in ["if-match", "host", "content-type"] {
                        if let Some(v) = headers.get(name) {
                            s.headers.push((name.into(), v.to_str().unwrap().into()));
                        }
                    }
                    s.bodies.push(body);
                    sync(json!({}))
                },
            ),
        )
        .route(
            "/1.0/cluster/members",
            get(|Query(q): Query<HashMap<String, String>>| async move {
                assert_eq!(q.get("recursion").map(String::as_str), Some("1"));
                sync(json!([member("node1"), member("node2")]))
            })
            .post(|Json(body): Json<Value>| async move {
                let name = body["server_name"].as_str().unwrap().to_string();
                let meta = json!({"addresses":["127.0.1.1:8443"],"expiresAt":"2026-11-26T16:47:49.47701206Z",
                    "fingerprint":"305de41f","secret":"fe3c","serverName":name});
                let op = operation("ec144174", "Running", 103, meta);
                let env = Envelope::async_op("/1.0/operations/ec144174".into(), op);
                let mut resp = (StatusCode::ACCEPTED, Json(env)).into_response();
                resp.headers_mut()
                    .insert("Location", "/1.0/operations/ec144174".parse().unwrap());
                resp
            }),
        )
        .route(
            "/1.0/cluster/members/{name}",
            get(|Path(name): Path<String>| async move {
                if name == "node1" {
                    sync(member("node1")).into_response()
                } else {
                    (
                        StatusCode::NOT_FOUND,
                        Json(Envelope::error(404, "Cluster member not found")),
                    )
                        .into_response()
                }
            })
            .put(|State(seen): State<Shared>, Json(body): Json<Value>| async move {
                seen.lock().unwrap().bodies.push(body);
                sync(json!({}))
            }),
        )
        .route(
            "/1.0/storage-pools",
            post(
                |State(seen): State<Shared>,
                 Query(q): Query<HashMap<String, String>>,
                 Json(body): Json<Value>| async move {
                    let mut s = seen.lock().unwrap();
                    s.queries.push(format!("target={}", q.get("target").cloned().unwrap_or_default()));
                    s.bodies.push(body);
                    let mut resp = (StatusCode::CREATED, sync(Value::Null)).into_response();
                    resp.headers_mut()
                        .insert("Location", "/1.0/storage-pools/pool2".parse().unwrap());
                    resp
                },
            ),
        )
        .route(
            "/1.0/operations",
            get(|| async {
                sync(json!({"running":[operation("a", "Running", 103, Value::Null)],
                            "success":[operation("b", "Success", 200, Value::Null)],
                            "failure": null}))
            }),
        )
        .route(
            "/1.0/operations/{id}",
            get(|Path(id): Path<String>| async move {
                sync(operation(&id, "Running", 103, Value::Null))
            })
            .delete(|| async { sync(json!({})) }),
        )
        .route(
            "/1.0/operations/{id}/wait",
            get(
                |Path(id): Path<String>, Query(q): Query<HashMap<String, String>>| async move {
                    // The timeout travels as whole seconds, rounded up.
                    assert_eq!(q.get("timeout").map(String::as_str), Some("2"));
                    if id == "bad" {
                        let mut op = operation(&id, "Failure", 400, Value::Null);
                        op["err"] = json!("No matching cluster join operation found");
                        sync(op)
                    } else {
                        sync(operation(&id, "Success", 200, Value::Null))
                    }
                },
            ),
        )
        .route(
            "/1.0/plain",
            get(|| async { (StatusCode::FORBIDDEN, "invalid client certificate\n") }),
        )
        .route("/1.0/events", get(events))
        .with_state(seen)
}

async fn events(ws: WebSocketUpgrade, Query(q): Query<HashMap<String, String>>) -> Response {
    let types = q.get("type").cloned().unwrap_or_default();
    ws.on_upgrade(move |mut socket| async move {
        // LXD sends a ping first, then one text frame per event.
        socket.send(Message::Ping(vec![1].into())).await.unwrap();
        for (i, status) in [("1", "Pending"), ("2", "Running"), ("3", "Success")] {
            let event = json!({"type":"operation","timestamp":format!("2026-11-26T13:47:4{i}.0Z"),
                "metadata": operation("op1", status, 103, json!({"types": types})),
                "location":"node1","project":"default"});
            socket
                .send(Message::Text(event.to_string().into()))
                .await
                .unwrap();
        }
        socket.send(Message::Close(None)).await.unwrap();
        // Wait for the client's close reply (and the pong) before dropping the socket.
        while let Some(Ok(_)) = socket.recv().await {}
    })
}

struct TestServer {
    client: Client,
    seen: Shared,
    _dir: tempfile::TempDir,
}

async fn start() -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("unix.socket");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let seen = Shared::default();
    let app = router(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    TestServer {
        client: Client::unix(&socket),
        seen,
        _dir: dir,
    }
}

#[tokio::test]
async fn sync_envelope_and_etag_decode() {
    let t = start().await;
    let (server, etag) = t.client.server().await.unwrap();
    assert_eq!(etag, "42ae9bf5");
    assert_eq!(server.auth, "trusted");
    assert_eq!(server.config.unwrap()["core.trust_password"], json!(true));

    let raw = t.client.request("GET", "/1.0", None, None).await.unwrap();
    assert_eq!(raw.status, 200);
    assert_eq!(raw.etag.as_deref(), Some("42ae9bf5"));
}

#[tokio::test]
async fn put_sends_host_if_match_and_json() {
    let t = start().await;
    let mut put = ServerPut::default();
    put.config
        .insert("core.https_address".into(), json!("127.0.1.1:8443"));
    t.client
        .update_server(&put, Some("42ae9bf5"))
        .await
        .unwrap();
    let seen = t.seen.lock().unwrap();
    let headers: HashMap<_, _> = seen.headers.iter().cloned().collect();
    assert_eq!(headers["if-match"], "\"42ae9bf5\"");
    assert_eq!(headers["host"], "unix.socket");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        seen.bodies[0],
        json!({"config":{"core.https_address":"127.0.1.1:8443"}})
    );
}

#[tokio::test]
async fn error_envelope_carries_status_and_text() {
    let t = start().await;
    let err = t.client.cluster_member("nope").await.unwrap_err();
    match &err {
        ClientError::Api { status, message } => {
            assert_eq!(*status, 404);
            assert_eq!(message, "Cluster member not found");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(err.to_string(), "Cluster member not found");

    let plain = t
        .client
        .request("GET", "/1.0/plain", None, None)
        .await
        .unwrap_err();
    assert_eq!(plain.status(), Some(403));
    assert_eq!(plain.to_string(), "invalid client certificate");
}

#[tokio::test]
async fn members_and_member_update() {
    let t = start().await;
    let members = t.client.cluster_members().await.unwrap();
    let names: Vec<_> = members.iter().map(|m| m.server_name.as_str()).collect();
    assert_eq!(names, ["node1", "node2"]);
    assert_eq!(members[0].put.roles, ["database-leader", "database"]);

    let (m, _) = t.client.cluster_member("node1").await.unwrap();
    let put = ClusterMemberPut {
        description: "first".into(),
        ..m.put
    };
    t.client
        .update_cluster_member("node1", &put, None)
        .await
        .unwrap();
    assert_eq!(t.seen.lock().unwrap().bodies[0]["description"], "first");
}

#[tokio::test]
async fn join_token_is_an_async_operation() {
    let t = start().await;
    let op = t.client.create_join_token("node2").await.unwrap();
    assert_eq!(op.id, "ec144174");
    assert_eq!(op.class, "token");
    assert_eq!(op.status_code, 103);
    let meta = op.metadata.unwrap();
    assert_eq!(meta["serverName"], "node2");
    assert_eq!(meta["expiresAt"], "2026-11-26T16:47:49.47701206Z");

    let raw = t
        .client
        .request(
            "POST",
            "/1.0/cluster/members",
            Some(json!({"server_name":"x"})),
            None,
        )
        .await
        .unwrap();
    assert_eq!(raw.status, 202);
    assert_eq!(raw.location.as_deref(), Some("/1.0/operations/ec144174"));
}

#[tokio::test]
async fn created_pool_is_201_with_target() {
    let t = start().await;
    let post = StoragePoolsPost {
        name: "pool2".into(),
        driver: "dir".into(),
        ..Default::default()
    };
    t.client
        .create_storage_pool(&post, Some("node1"))
        .await
        .unwrap();
    let raw = t
        .client
        .request(
            "POST",
            "/1.0/storage-pools",
            Some(json!({"name":"p","driver":"dir"})),
            None,
        )
        .await
        .unwrap();
    assert_eq!(raw.status, 201);
    assert_eq!(raw.location.as_deref(), Some("/1.0/storage-pools/pool2"));
    let seen = t.seen.lock().unwrap();
    assert_eq!(seen.queries, ["target=node1", "target="]);
    assert_eq!(seen.bodies[0]["driver"], "dir");
}

#[tokio::test]
async fn operations_list_get_cancel_and_wait() {
    let t = start().await;
    let ops = t.client.operations().await.unwrap();
    assert_eq!(ops["running"][0].id, "a");
    assert_eq!(ops["success"][0].status, "Success");
    assert!(ops["failure"].is_empty());

    assert_eq!(t.client.operation("xyz").await.unwrap().id, "xyz");
    t.client.cancel_operation("xyz").await.unwrap();

    let timeout = Some(Duration::from_millis(1500));
    let done = t.client.wait_operation("good", timeout).await.unwrap();
    assert_eq!(done.status_code, 200);

    let op = t.client.operation("bad").await.unwrap();
    let err = t.client.wait_success(&op, timeout).await.unwrap_err();
    assert_eq!(err.to_string(), "No matching cluster join operation found");
}

#[tokio::test]
async fn events_arrive_in_order_and_end_on_close() {
    let t = start().await;
    let stream = t.client.events(&["operation"]).await.unwrap();
    let events: Vec<_> = stream.collect().await;
    let statuses: Vec<String> = events
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            assert_eq!(e.kind, "operation");
            assert_eq!(e.location, "node1");
            assert_eq!(e.metadata["metadata"]["types"], "operation");
            e.metadata["status"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(statuses, ["Pending", "Running", "Success"]);
}

#[tokio::test]
async fn missing_socket_is_a_connect_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unix.socket");
    let client = Client::unix(&path);
    let err = client.server().await.unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }));
    assert!(err.to_string().contains(&path.display().to_string()));
    let err = client.events(&[]).await.unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }));
}
