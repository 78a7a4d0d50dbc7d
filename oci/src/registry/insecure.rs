//! Which registries are spoken to over plain HTTP, as Docker and podman users expect:
//!
//! - named ones (`--insecure-registry HOST` for every port of HOST, `HOST:PORT` for that
//!   port only) get plain HTTP straight away;
//! - loopback ones (`localhost`, `127.0.0.0/8`, `::1`, by name: nothing is resolved), those
//!   of [`HttpFallback`] and, with oc's `--insecure`, every registry are tried over HTTPS
//!   first (certificates checked as usual) and spoken to over plain HTTP from the moment
//!   one answers a TLS handshake in plain HTTP, as Docker does for its insecure registries.
//!   A loopback registry that speaks TLS therefore keeps TLS;
//! - any other registry answering in plain HTTP fails at once, not retried: no wait helps,
//!   and the message says which flag to pass.
//!
//! Credentials go to a plain-HTTP token service only on a host named with
//! `--insecure-registry` (port-less: any port of it), loopback hosts included: a token
//! service is another service than the registry, and falling back to plain HTTP for a
//! registry's API says nothing about where its secrets may travel.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Mutex;

use super::error::RegistryError;

/// Registries tried over HTTPS first and spoken to over plain HTTP once they answer in it,
/// besides loopback registries, which always are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpFallback {
    /// Every registry (oc's `--insecure`).
    pub everywhere: bool,
    /// These registries (`host` for every port of it, or `host:port`): skopeo's
    /// `--src-tls-verify=false` and `--dest-tls-verify=false`.
    pub registries: HashSet<String>,
}

/// The plain-HTTP rules of one client, and the registries found to speak plain HTTP.
#[derive(Debug, Default)]
pub struct PlainHttp {
    named: HashSet<String>,
    fallback: HttpFallback,
    found: Mutex<HashSet<String>>,
}

impl PlainHttp {
    /// The rules for `named` registries (plain HTTP at once) and `fallback` ones.
    pub fn new(named: &HashSet<String>, fallback: &HttpFallback) -> Self {
        PlainHttp {
            named: named.iter().map(|s| s.to_ascii_lowercase()).collect(),
            fallback: HttpFallback {
                everywhere: fallback.everywhere,
                registries: fallback
                    .registries
                    .iter()
                    .map(|s| s.to_ascii_lowercase())
                    .collect(),
            },
            found: Mutex::default(),
        }
    }

    /// `http` for a named registry or one found to speak plain HTTP, else `https`.
    pub(crate) fn scheme(&self, registry: &str) -> &'static str {
        if matches(&self.named, registry) || self.speaks_plain_http(registry) {
            "http"
        } else {
            "https"
        }
    }

    /// True once `registry`, allowed to fall back, answered a TLS handshake in plain HTTP.
    pub(crate) fn speaks_plain_http(&self, registry: &str) -> bool {
        self.found().contains(&registry.to_ascii_lowercase())
    }

    /// True when `url` is an HTTPS request to `registry` itself (not a redirect elsewhere)
    /// and the registry was found to speak plain HTTP: it is to be sent again over HTTP.
    pub(crate) fn switch_to_http(&self, registry: &str, url: &url::Url) -> bool {
        let to_registry = url.host_str().is_some_and(|h| {
            let authority = match url.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            };
            authority.eq_ignore_ascii_case(crate::reference::api_host(registry))
        });
        url.scheme() == "https" && to_registry && self.speaks_plain_http(registry)
    }

    /// Tried over HTTPS first, plain HTTP when it answers so.
    fn may_fall_back(&self, registry: &str) -> bool {
        self.fallback.everywhere
            || is_loopback(registry)
            || matches(&self.fallback.registries, registry)
    }

    /// Whether credentials may go to a plain-HTTP token service at `host[:port]`: only
    /// when named.
    pub(crate) fn trusts(&self, host_port: &str) -> bool {
        matches(&self.named, host_port)
    }

    /// Remembers `registry` as speaking plain HTTP when `e` says it answered an HTTPS
    /// request in plain HTTP and it may fall back; true when it was remembered.
    pub(crate) fn notice(&self, registry: &str, e: &reqwest::Error) -> bool {
        let learnt = answered_in_plain_http(e) && self.may_fall_back(registry);
        if learnt {
            self.found().insert(registry.to_ascii_lowercase());
        }
        learnt
    }

    fn found(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.found.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// True when `entries` names `registry`: `host:port` exactly, or `host` for every port.
fn matches(entries: &HashSet<String>, registry: &str) -> bool {
    let registry = registry.to_ascii_lowercase();
    entries.contains(&registry) || entries.contains(host(&registry))
}

/// The host of `host[:port]` (`[::1]:5000` gives `[::1]`).
fn host(registry: &str) -> &str {
    if let Some(end) = registry.strip_prefix('[').and_then(|r| r.find(']')) {
        return &registry[..end + 2];
    }
    match registry.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => registry,
    }
}

/// `localhost`, `127.0.0.0/8` and `::1`, as written (names are not resolved).
pub(crate) fn is_loopback(registry: &str) -> bool {
    let h = host(registry);
    let bare = h
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(h);
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// True when an HTTPS request got plain HTTP back: rustls reads the `HTTP/1.x` of the
/// answer as a record of an unknown content type. rustls is reached only through reqwest,
/// so its error is recognised here, once, by its text; a test pins that text against a
/// real plain-HTTP server.
pub(crate) fn answered_in_plain_http(e: &reqwest::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        if s.to_string().contains("InvalidContentType") {
            return true;
        }
        source = s.source();
    }
    false
}

/// The permanent error of a registry that answered HTTPS in plain HTTP, with the flag to
/// pass.
pub(crate) fn plain_http_error(registry: &str, method: &str, path: &str) -> RegistryError {
    RegistryError::Protocol {
        registry: registry.to_string(),
        message: format!(
            "{method} {path}: this registry speaks plain HTTP; pass --insecure-registry {registry}"
        ),
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(p.scheme("r.example:5301"), "http");
        assert_eq!(p.scheme("R.Example"), "http");
        assert_eq!(p.scheme("q.example:5000"), "http");
        assert_eq!(p.scheme("q.example:5001"), "https");
        assert_eq!(p.scheme("q.example"), "https");
        assert_eq!(p.scheme("quay.io"), "https");
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
        let everywhere = PlainHttp::new(
            &HashSet::new(),
            &HttpFallback {
                everywhere: true,
                ..HttpFallback::default()
            },
        );
        assert!(everywhere.may_fall_back("quay.io"));
        let some = PlainHttp::new(
            &HashSet::new(),
            &HttpFallback {
                everywhere: false,
                registries: set(&["vm"]),
            },
        );
        assert!(some.may_fall_back("vm:5000") && !some.may_fall_back("quay.io"));
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

        let refused = reqwest::Client::new()
            .get("https://127.0.0.1:1/v2/")
            .send()
            .await
            .unwrap_err();
        assert!(!answered_in_plain_http(&refused), "{refused:?}");
    }
}
