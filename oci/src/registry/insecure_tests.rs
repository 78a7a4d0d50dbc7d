//! Which registries are reached without certificate checks or over plain HTTP, and what
//! is learnt of a registry that answers HTTPS in plain HTTP (against real servers).

use super::*;

fn set(items: &[&str]) -> HashSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn loopback_names_and_addresses_are_loopback_others_are_not() {
    for r in [
        "localhost",
        "localhost:5000",
        "LOCALHOST:1",
        "127.0.0.1:5301",
        "127.1.2.3",
        "[::1]:5000",
        "::1",
    ] {
        assert!(is_loopback(r), "{r}");
    }
    for r in [
        "quay.io",
        "10.0.0.1:5000",
        "localhost.example.com",
        "vm:5000",
        "[::2]:5000",
    ] {
        assert!(!is_loopback(r), "{r}");
    }
}

#[test]
fn a_host_without_port_names_every_port_a_host_with_port_only_that_one() {
    let p = PlainHttp::new(
        &set(&["r.example", "q.example:5000"]),
        &HttpFallback::default(),
    );
    assert!(p.insecure("r.example:5301") && p.insecure("R.Example"));
    assert!(p.insecure("q.example:5000"));
    assert!(!p.insecure("q.example:5001") && !p.insecure("q.example"));
    assert!(!p.insecure("quay.io"));
}

#[test]
fn named_registries_are_tried_over_https_first_without_certificate_checks() {
    let p = PlainHttp::new(&set(&["r.example"]), &HttpFallback::default());
    assert_eq!(
        p.scheme("r.example:5301"),
        "https",
        "not plain HTTP at once"
    );
    assert!(p.may_fall_back("r.example:5301"));
    let at = |u: &str| url::Url::parse(u).unwrap();
    assert!(!p.verifies("r.example:5301", &at("https://r.example:5301/v2/")));
    assert!(p.verifies("quay.io", &at("https://quay.io/v2/")));
    // A loopback registry not named keeps its certificate checks.
    assert!(p.verifies("127.0.0.1:5000", &at("https://127.0.0.1:5000/v2/")));
}

#[test]
fn tls_verify_false_and_oc_insecure_skip_certificate_checks_but_not_the_credential_rule() {
    let at = |u: &str| url::Url::parse(u).unwrap();
    let some = PlainHttp::new(
        &HashSet::new(),
        &HttpFallback {
            everywhere: false,
            registries: set(&["vm"]),
        },
    );
    assert!(some.insecure("vm:5000") && !some.insecure("quay.io"));
    assert!(!some.verifies("vm:5000", &at("https://vm:5000/v2/")));
    assert!(some.verifies("quay.io", &at("https://quay.io/v2/")));
    assert!(!some.trusts("vm:5000"), "no credentials over plain HTTP");
    let everywhere = PlainHttp::new(
        &HashSet::new(),
        &HttpFallback {
            everywhere: true,
            ..HttpFallback::default()
        },
    );
    assert!(everywhere.insecure("quay.io") && everywhere.may_fall_back("quay.io"));
    assert!(!everywhere.verifies("quay.io", &at("https://cdn.example.com/blob")));
    assert!(!everywhere.trusts("auth.example.com"));
    assert!(!PlainHttp::default().any_insecure() && everywhere.any_insecure());
}

#[test]
fn redirects_and_token_services_elsewhere_are_checked_unless_their_host_is_named() {
    let at = |u: &str| url::Url::parse(u).unwrap();
    let p = PlainHttp::new(&set(&["r.example", "auth.lan"]), &HttpFallback::default());
    assert!(p.verifies("r.example", &at("https://s3.amazonaws.com/bucket/blob")));
    assert!(p.verifies("r.example", &at("https://auth.example.com/token")));
    assert!(!p.verifies("r.example", &at("https://auth.lan:8443/token")));
    // Docker Hub named by its reference name: its API host is the registry itself.
    let hub = PlainHttp::new(&set(&["docker.io"]), &HttpFallback::default());
    assert!(!hub.verifies("docker.io", &at("https://registry-1.docker.io/v2/")));
    assert!(hub.verifies(
        "docker.io",
        &at("https://production.cloudflare.docker.com/x")
    ));
}

#[test]
fn loopback_is_tried_over_https_first_and_only_named_hosts_get_credentials_over_http() {
    let p = PlainHttp::default();
    assert_eq!(p.scheme("127.0.0.1:5000"), "https");
    assert!(p.may_fall_back("127.0.0.1:5000") && p.may_fall_back("localhost:1"));
    assert!(!p.may_fall_back("vm:5000"));
    assert!(!p.trusts("127.0.0.1:5001") && !p.trusts("auth.example.com"));
    let named = PlainHttp::new(&set(&["auth.example.com"]), &HttpFallback::default());
    assert!(named.trusts("auth.example.com:8080") && !named.trusts("other.example.com"));
}

#[test]
fn the_plain_http_error_is_permanent_and_names_the_flag() {
    let e = plain_http_error("vm:5301", "GET", "/v2/");
    assert!(!e.is_retryable());
    assert_eq!(
        e.to_string(),
        "registry vm:5301: GET /v2/: this registry speaks plain HTTP; pass --insecure-registry vm:5301"
    );
}

/// A listener that answers every connection in plain HTTP, as docker-registry without
/// TLS answers a TLS handshake.
async fn plain_http_server() -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                .await;
        }
    });
    port
}

#[tokio::test]
async fn an_https_request_answered_in_plain_http_is_recognised_and_learnt_only_where_allowed() {
    let port = plain_http_server().await;
    let e = reqwest::Client::new()
        .get(format!("https://127.0.0.1:{port}/v2/"))
        .send()
        .await
        .unwrap_err();
    assert!(answered_in_plain_http(&e), "{e:?}");
    let p = PlainHttp::default();
    assert!(!p.notice(&format!("vm:{port}"), &e), "not loopback");
    assert_eq!(p.scheme(&format!("vm:{port}")), "https");
    let loopback = format!("127.0.0.1:{port}");
    assert!(p.notice(&loopback, &e));
    assert_eq!(p.scheme(&loopback), "http");
    let at = |u: &str| url::Url::parse(u).unwrap();
    assert!(p.switch_to_http(&loopback, &at(&format!("https://{loopback}/v2/"))));
    assert!(!p.switch_to_http(&loopback, &at("https://cdn.example.com/blob")));
    assert!(!p.switch_to_http(&loopback, &at(&format!("http://{loopback}/v2/"))));

    // An error of another host (a redirect target) teaches nothing about the registry.
    let named = PlainHttp::new(&set(&["vm"]), &HttpFallback::default());
    assert!(
        !named.notice(&format!("vm:{port}"), &e),
        "the error is of 127.0.0.1"
    );
    assert_eq!(named.scheme(&format!("vm:{port}")), "https");

    let refused = reqwest::Client::new()
        .get("https://127.0.0.1:1/v2/")
        .send()
        .await
        .unwrap_err();
    assert!(!answered_in_plain_http(&refused), "{refused:?}");
}

/// Nothing listening on 443 of an insecure registry written without a port: plain HTTP
/// (port 80) is tried, as Docker does; with a port, or not insecure, it is an error.
#[tokio::test]
async fn a_refused_connection_falls_back_only_for_an_insecure_registry_without_a_port() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let e = reqwest::Client::new()
        .get(format!("https://127.0.0.1:{port}/v2/"))
        .send()
        .await
        .unwrap_err();
    assert!(refused(&e) && !answered_in_plain_http(&e), "{e:?}");
    let p = PlainHttp::new(&set(&["r.example"]), &HttpFallback::default());
    assert!(p.learns("r.example", false, true));
    assert!(
        !p.learns("r.example:5000", false, true),
        "a port was given: no other"
    );
    assert!(!p.learns("quay.io", false, true), "not insecure");
    assert!(!p.learns("localhost", false, true), "loopback, not named");
    assert!(!p.learns("r.example", false, false), "another failure");
    assert!(has_port("[::1]:5000") && !has_port("[::1]") && !has_port("r.example"));
}
