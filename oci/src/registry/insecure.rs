//! Which registries are spoken to without certificate checks or over plain HTTP, as
//! Docker's `insecure-registries`, skopeo's `--tls-verify=false` and oc's `--insecure`
//! mean it: "accept an unverified certificate, and plain HTTP where the registry speaks
//! it". A registry named insecure may still speak TLS (a self-signed certificate, say), so
//! naming it never turns its TLS off:
//!
//! - insecure registries (`--insecure-registry HOST` for every port of HOST, `HOST:PORT`
//!   for that port only; those of [`HttpFallback`]: skopeo's `--src-tls-verify=false` and
//!   `--dest-tls-verify=false`; every registry with oc's `--insecure`) are tried over HTTPS
//!   first, their certificate NOT checked, and spoken to over plain HTTP from the moment one
//!   answers a TLS handshake in plain HTTP. One written without a port that refuses the
//!   connection on 443 is tried on 80 over plain HTTP, as Docker does;
//! - loopback ones (`localhost`, `127.0.0.0/8`, `::1`, by name: nothing is resolved) not
//!   named insecure are tried over HTTPS first with certificates checked as usual
//!   (`--ca-file`), and fall back to plain HTTP the same way. A loopback registry that
//!   speaks TLS therefore keeps TLS, and its certificate is checked;
//! - any other registry answering in plain HTTP fails at once, not retried: no wait helps,
//!   and the message says which flag to pass.
//!
//! Certificates go unchecked only on hosts named insecure. A request on behalf of an
//! insecure registry that is redirected to another host (blob storage), or a token service
//! on another host, checks that host's certificate unless that host (`host` or `host:port`)
//! is itself named insecure: a registry's self-signed certificate says nothing about its
//! storage or its token service. The client not checking certificates therefore stops at a
//! redirect to any other HTTPS host, and the request (a GET or HEAD) is sent there by the
//! checking one, without the registry's credentials (see `client.rs`).
//!
//! Credentials go to a plain-HTTP token service only on a host named with
//! `--insecure-registry` (port-less: any port of it), loopback hosts included: a token
//! service is another service than the registry, and falling back to plain HTTP for a
//! registry's API says nothing about where its secrets may travel. `--insecure` and
//! `--*-tls-verify=false` do not widen this.

use parking_lot::Mutex;
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use super::error::RegistryError;
use crate::name::api_host;

/// Registries reached without certificate checks and over plain HTTP where they speak it,
/// besides those of `--insecure-registry`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpFallback {
    /// Every registry (oc's `--insecure`).
    pub everywhere: bool,
    /// These registries (`host` for every port of it, or `host:port`): skopeo's
    /// `--src-tls-verify=false` and `--dest-tls-verify=false`.
    pub registries: HashSet<String>,
}

/// A registry client's two connection pools: one checking certificates, one not (used
/// only for hosts named insecure; see [`PlainHttp::client`]).
#[derive(Clone, Debug)]
pub struct HttpClients {
    /// Certificates checked (system roots and `--ca-file`).
    pub verifying: reqwest::Client,
    /// Certificates not checked; stops at redirects to hosts that are not insecure.
    pub unverified: reqwest::Client,
}

impl HttpClients {
    /// The same client for both, when no registry is insecure (and in tests).
    pub fn verifying_only(http: reqwest::Client) -> Self {
        HttpClients {
            verifying: http.clone(),
            unverified: http,
        }
    }
}

/// The insecure-registry rules of one client, and the registries found to speak plain
/// HTTP.
#[derive(Debug, Default)]
pub struct PlainHttp {
    rules: Arc<Rules>,
    found: Mutex<HashSet<String>>,
}

/// Which registries are insecure, lowercased.
#[derive(Debug, Default)]
struct Rules {
    named: HashSet<String>,
    fallback: HttpFallback,
}

impl Rules {
    /// Named, of the fallback set, or everywhere: no certificate check, plain HTTP allowed.
    fn insecure(&self, registry: &str) -> bool {
        self.fallback.everywhere
            || matches(&self.named, registry)
            || matches(&self.fallback.registries, registry)
    }
}

impl PlainHttp {
    /// The rules for `named` registries (`--insecure-registry`) and `fallback` ones.
    pub fn new(named: &HashSet<String>, fallback: &HttpFallback) -> Self {
        let lower = |set: &HashSet<String>| set.iter().map(|s| s.to_ascii_lowercase()).collect();
        PlainHttp {
            rules: Arc::new(Rules {
                named: lower(named),
                fallback: HttpFallback {
                    everywhere: fallback.everywhere,
                    registries: lower(&fallback.registries),
                },
            }),
            found: Mutex::default(),
        }
    }

    /// True when some registry may be reached without certificate checks.
    pub(crate) fn any_insecure(&self) -> bool {
        let r = &self.rules;
        r.fallback.everywhere || !r.named.is_empty() || !r.fallback.registries.is_empty()
    }

    /// `http` for a registry found to speak plain HTTP, else `https` (insecure ones too:
    /// they are tried over HTTPS first).
    pub(crate) fn scheme(&self, registry: &str) -> &'static str {
        if self.speaks_plain_http(registry) {
            "http"
        } else {
            "https"
        }
    }

    /// True when `registry` is reached without certificate checks.
    pub(crate) fn insecure(&self, registry: &str) -> bool {
        self.rules.insecure(registry)
    }

    /// Whether a request to `url` on behalf of `registry` checks the server's certificate:
    /// not when it goes to `registry` itself and that one is insecure, nor when the URL's
    /// own `host[:port]` is named insecure; checked everywhere else.
    pub(crate) fn verifies(&self, registry: &str, url: &url::Url) -> bool {
        let Some(at) = authority(url) else {
            return true;
        };
        let to_registry = at.eq_ignore_ascii_case(api_host(registry));
        !((to_registry && self.insecure(registry)) || self.insecure(&at))
    }

    /// The client for a request to `url` on behalf of `registry` (see `verifies`).
    pub fn client<'a>(
        &self,
        clients: &'a HttpClients,
        registry: &str,
        url: &url::Url,
    ) -> &'a reqwest::Client {
        if self.verifies(registry, url) {
            &clients.verifying
        } else {
            &clients.unverified
        }
    }

    /// The redirect policy of the client that does not check certificates: at most 10
    /// hops, as reqwest's default, followed to plain-HTTP URLs and to insecure hosts only;
    /// at a redirect to any other HTTPS host it stops and hands the 3xx back, to be sent
    /// there by the checking client.
    pub(crate) fn unverified_redirects(&self) -> reqwest::redirect::Policy {
        let rules = Arc::clone(&self.rules);
        reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 10 {
                return attempt.error("too many redirects");
            }
            let url = attempt.url();
            let insecure_host = authority(url).is_some_and(|a| rules.insecure(&a));
            if url.scheme() == "http" || insecure_host {
                attempt.follow()
            } else {
                attempt.stop()
            }
        })
    }

    /// True once `registry`, allowed to fall back, answered a TLS handshake in plain HTTP.
    pub(crate) fn speaks_plain_http(&self, registry: &str) -> bool {
        self.found().contains(&registry.to_ascii_lowercase())
    }

    /// True when `url` is an HTTPS request to `registry` itself (not a redirect elsewhere)
    /// and the registry was found to speak plain HTTP: it is to be sent again over HTTP.
    pub(crate) fn switch_to_http(&self, registry: &str, url: &url::Url) -> bool {
        url.scheme() == "https" && to_registry(registry, url) && self.speaks_plain_http(registry)
    }

    /// Tried over HTTPS first, plain HTTP when it answers so.
    fn may_fall_back(&self, registry: &str) -> bool {
        self.insecure(registry) || is_loopback(registry)
    }

    /// Whether credentials may go to a plain-HTTP token service at `host[:port]`: only
    /// when named with `--insecure-registry`.
    pub(crate) fn trusts(&self, host_port: &str) -> bool {
        matches(&self.rules.named, host_port)
    }

    /// Remembers `registry` as speaking plain HTTP when `e`, an error of a request to the
    /// registry itself, says it answered an HTTPS request in plain HTTP and it may fall
    /// back, or that nothing listens on 443 of an insecure registry written without a port;
    /// true when it was remembered.
    pub(crate) fn notice(&self, registry: &str, e: &reqwest::Error) -> bool {
        let at_registry = e.url().is_none_or(|u| to_registry(registry, u));
        let learnt = at_registry && self.learns(registry, answered_in_plain_http(e), refused(e));
        if learnt {
            self.found().insert(registry.to_ascii_lowercase());
        }
        learnt
    }

    /// Whether an HTTPS request to `registry` answered in plain HTTP, or refused, means
    /// plain HTTP is to be spoken to it.
    fn learns(&self, registry: &str, answered_in_plain_http: bool, refused: bool) -> bool {
        (answered_in_plain_http && self.may_fall_back(registry))
            || (refused && !has_port(registry) && self.insecure(registry))
    }

    fn found(&self) -> parking_lot::MutexGuard<'_, HashSet<String>> {
        self.found.lock()
    }
}

/// `host[:port]` of a URL as written (no default port added).
fn authority(url: &url::Url) -> Option<String> {
    let h = url.host_str()?;
    Some(match url.port() {
        Some(p) => format!("{h}:{p}"),
        None => h.to_string(),
    })
}

/// True when `url` goes to `registry`'s API host itself.
fn to_registry(registry: &str, url: &url::Url) -> bool {
    authority(url).is_some_and(|a| a.eq_ignore_ascii_case(api_host(registry)))
}

/// True when `registry` is written with a port.
fn has_port(registry: &str) -> bool {
    host(registry).len() != registry.len()
}

/// True when the connection was refused: nothing listens there.
fn refused(e: &reqwest::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        if s.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        source = s.source();
    }
    false
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
#[path = "insecure_tests.rs"]
mod tests;
