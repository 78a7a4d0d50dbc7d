//! Registry authentication: the `WWW-Authenticate` challenge, Basic, and the Bearer token
//! flow of the distribution spec, with tokens cached per registry and scope set.
//!
//! Credentials are looked up only when a registry asks for them (its first 401), so a
//! credential helper runs only for registries that need it; the token flows themselves
//! are in `token.rs`.
//!
//! Scopes matter: a push needs `pull,push` on the destination repository and a cross-repo
//! mount additionally needs `pull` on the repository it mounts from, all in one token.

use std::collections::HashMap;
use std::time::Instant;

use reqwest::header::HeaderValue;
use tokio::sync::Mutex;

use super::credential::basic_header;
use super::credentials::CredentialStore;
use super::error::RegistryError;
use super::scope::Scope;
use super::token::{host_port, Fetched, Realm, Token, TokenAsk, TokenPolicy};

/// How a registry wants to be spoken to, learnt from its first 401.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP Basic: the username and password go with every request.
    Basic,
    /// Bearer tokens from a token service, one per scope, cached until they expire.
    Bearer {
        /// The token service URL.
        realm: String,
        /// The `service` parameter passed on to the token service, when given.
        service: Option<String>,
    },
}

impl Challenge {
    /// Parses a `WWW-Authenticate` header value; Bearer is preferred when several are offered.
    pub fn parse(header: &str) -> Option<Challenge> {
        let challenges = http_auth::parse_challenges(header).ok()?;
        let param = |c: &http_auth::ChallengeRef, name: &str| {
            c.params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.to_unescaped())
        };
        if let Some(c) = challenges
            .iter()
            .find(|c| c.scheme.eq_ignore_ascii_case("bearer"))
        {
            return Some(Challenge::Bearer {
                realm: param(c, "realm")?,
                service: param(c, "service"),
            });
        }
        challenges
            .iter()
            .find(|c| c.scheme.eq_ignore_ascii_case("basic"))
            .map(|_| Challenge::Basic)
    }
}

/// Challenges per registry and tokens per (registry, scope), shared by all requests.
#[derive(Default)]
pub struct AuthState {
    challenges: Mutex<HashMap<String, Challenge>>,
    tokens: Mutex<HashMap<(String, Scope), Token>>,
    /// (registry, token host) pairs already logged, so each is said once.
    realms_seen: parking_lot::Mutex<std::collections::HashSet<(String, String)>>,
    /// Basic registries that refused the credentials sent: their credential helper is
    /// asked again before the next request (what it answered may have expired).
    basic_refused: parking_lot::Mutex<std::collections::HashSet<String>>,
}

impl AuthState {
    /// Remembers the challenge a registry answered with.
    pub async fn set_challenge(&self, registry: &str, challenge: Challenge) {
        self.challenges
            .lock()
            .await
            .insert(registry.to_string(), challenge);
    }

    /// Forgets a token the registry refused; for a Basic registry, notes that the
    /// credentials it was sent were refused.
    pub async fn invalidate(&self, registry: &str, scope: &Scope) {
        if self.challenges.lock().await.get(registry) == Some(&Challenge::Basic) {
            self.basic_refused.lock().insert(registry.to_string());
        }
        self.tokens
            .lock()
            .await
            .remove(&(registry.to_string(), scope.clone()));
    }

    /// The `Authorization` header for a request, or `None` while the registry has not
    /// asked for any (anonymous until the first 401). Credentials are looked up (a
    /// credential helper run) only here, once the registry asked for them.
    pub async fn authorization(
        &self,
        http: &super::insecure::HttpClients,
        registry: &str,
        scope: &Scope,
        creds: &CredentialStore,
        policy: &TokenPolicy<'_>,
    ) -> Result<Option<HeaderValue>, RegistryError> {
        let challenge = self.challenges.lock().await.get(registry).cloned();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => {
                if self.basic_refused.lock().remove(registry) {
                    creds.forget_helper_answers(registry);
                }
                let c = creds.lookup(registry).await?.ok_or_else(|| RegistryError::Auth {
                    registry: registry.to_string(),
                    message: "the registry requires a username and password and the registry config has none for it".into(),
                })?;
                Ok(Some(basic_header(&c)))
            }
            Some(Challenge::Bearer { realm, service }) => {
                let key = (registry.to_string(), scope.clone());
                if let Some(t) = self.tokens.lock().await.get(&key) {
                    if t.expires > Instant::now() {
                        return Ok(Some(bearer_header(&t.value)));
                    }
                }
                self.note_realm(registry, &realm);
                let ask = TokenAsk {
                    http,
                    registry,
                    realm: Realm {
                        url: &realm,
                        service: service.as_deref(),
                    },
                    scope,
                    policy,
                };
                let token = fetch_token(&ask, creds).await?;
                let header = bearer_header(&token.value);
                self.tokens.lock().await.insert(key, token);
                Ok(Some(header))
            }
        }
    }
}

/// A token with the registry's credentials; when the token service refuses a credential
/// helper's answer, the helper is asked once more (its token may have expired).
async fn fetch_token(ask: &TokenAsk<'_>, creds: &CredentialStore) -> Result<Token, RegistryError> {
    let cred = creds.lookup(ask.registry).await?;
    match ask.fetch(cred.as_ref()).await? {
        Fetched::Token(t) => Ok(t),
        Fetched::Refused(e) if cred.is_none() || !creds.forget_helper_answers(ask.registry) => {
            Err(e)
        }
        Fetched::Refused(_) => {
            let again = creds.lookup(ask.registry).await?;
            match ask.fetch(again.as_ref()).await? {
                Fetched::Token(t) => Ok(t),
                Fetched::Refused(e) => Err(e),
            }
        }
    }
}

impl AuthState {
    /// Says once per registry and token host where a registry sends its token requests,
    /// when that is another host: credentials go there, and an operator should know it.
    fn note_realm(&self, registry: &str, realm: &str) {
        let Some(host) = url::Url::parse(realm).ok().and_then(|u| host_port(&u)) else {
            return;
        };
        if host == registry {
            return;
        }
        let mut seen = self.realms_seen.lock();
        if seen.insert((registry.to_string(), host.clone())) {
            tracing::info!(registry, token_host = %host, "the registry's tokens come from another host");
        }
    }
}

fn bearer_header(token: &str) -> HeaderValue {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}"))
        .unwrap_or_else(|_| HeaderValue::from_static(""));
    v.set_sensitive(true);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::scope::Access;
    use std::time::Duration;

    #[test]
    fn bearer_challenge_gives_realm_and_service() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            })
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(Challenge::parse("garbage"), None);
    }

    #[tokio::test]
    async fn credentials_are_looked_up_only_once_asked_and_again_after_a_basic_refusal() {
        use crate::registry::cred_helper::{tests::FakeHelpers, TIMEOUT};
        let helpers = FakeHelpers::new();
        helpers.install(
            "store",
            r#"printf '{"ServerURL":"x","Username":"u","Secret":"s"}'"#,
        );
        let creds = CredentialStore::from_json(r#"{"credsStore":"store"}"#)
            .unwrap()
            .with_runner(helpers.runner(TIMEOUT));
        let (state, http) = (
            AuthState::default(),
            crate::registry::HttpClients::verifying_only(reqwest::Client::new()),
        );
        let insecure = crate::registry::PlainHttp::default();
        let policy = TokenPolicy {
            timeout: Duration::from_secs(5),
            insecure: &insecure,
        };
        let scope = Scope::repo("a/b", Access::Pull);
        let (state, http, creds, policy, scope) = (&state, &http, &creds, &policy, &scope);
        let header = move || async move {
            state
                .authorization(http, "r.example", scope, creds, policy)
                .await
                .unwrap()
        };

        assert!(header().await.is_none(), "anonymous until challenged");
        assert!(
            helpers.calls("store").is_empty(),
            "no helper before a challenge"
        );
        // The first 401: the challenge is learnt, nothing was refused.
        state.invalidate("r.example", scope).await;
        state.set_challenge("r.example", Challenge::Basic).await;
        assert!(header().await.is_some());
        assert!(header().await.is_some());
        assert_eq!(helpers.calls("store").len(), 1, "the answer is kept");
        // A 401 to the credentials sent: the helper is asked again.
        state.invalidate("r.example", scope).await;
        state.set_challenge("r.example", Challenge::Basic).await;
        assert!(header().await.is_some());
        assert_eq!(helpers.calls("store").len(), 2);
    }

    #[test]
    fn mount_scope_asks_push_on_target_and_pull_on_source() {
        let s = Scope::repo("team/app", Access::Push).and_pull("base/os");
        assert_eq!(
            s.params(),
            vec!["repository:base/os:pull", "repository:team/app:pull,push"]
        );
        assert_eq!(
            Scope::repo("x", Access::Push).and_pull("x").params(),
            vec!["repository:x:pull,push"]
        );
    }
}
