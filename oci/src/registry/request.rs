//! One registry request as the retry loop takes it: which [`Operation`] it is, on which
//! repository, with which access, to which URL, with which headers and body. The loop's
//! rules (what counts against a pull quota, how an answer is timed, which 400 of a
//! manifest PUT is tried again) read the operation, never the URL's text.

use reqwest::header::HeaderMap;
use reqwest::Method;

use super::scope::{Access, Scope};
use crate::name::Repository;

/// The registry operation a request performs, as the distribution spec names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operation {
    /// `HEAD /manifests/<reference>`.
    HeadManifest,
    /// `GET /manifests/<reference>`.
    GetManifest,
    /// `PUT /manifests/<reference>`.
    PutManifest,
    /// `GET /tags/list`.
    ListTags,
    /// `GET /referrers/<digest>`.
    Referrers,
    /// `HEAD /blobs/<digest>`.
    HeadBlob,
    /// `GET /blobs/<digest>`.
    GetBlob,
    /// `POST /blobs/uploads/?mount=&from=`.
    MountBlob,
    /// `POST /blobs/uploads/`: a session opened.
    StartUpload,
    /// `POST /blobs/uploads/?digest=` with the bytes: an upload in one request.
    PostBlob,
    /// `DELETE` of an upload session.
    CancelUpload,
}

impl Operation {
    /// The HTTP method.
    pub(crate) fn method(self) -> Method {
        use Operation::*;
        match self {
            HeadManifest | HeadBlob => Method::HEAD,
            GetManifest | ListTags | Referrers | GetBlob => Method::GET,
            PutManifest => Method::PUT,
            MountBlob | StartUpload | PostBlob => Method::POST,
            CancelUpload => Method::DELETE,
        }
    }

    /// The access it needs unless asked for more: reads pull, writes push.
    fn access(self) -> Access {
        match self.method() {
            Method::GET | Method::HEAD => Access::Pull,
            _ => Access::Push,
        }
    }

    /// How long the answer may take: blob downloads stream their body past the limit.
    pub(crate) fn transfer(self) -> Transfer {
        match self {
            Operation::GetBlob => Transfer::Streamed,
            _ => Transfer::Whole,
        }
    }

    /// Whether registries count it against a pull quota (Docker Hub counts manifest GETs).
    pub(crate) fn counts_against_pull_quota(self) -> bool {
        self == Operation::GetManifest
    }

    /// Whether a `400 DIGEST_INVALID` answer is tried again (see `execute.rs`).
    pub(crate) fn retries_unread_manifest(self) -> bool {
        self == Operation::PutManifest
    }
}

/// A request body that can be sent again on a retry.
pub(crate) enum Body {
    Empty,
    Bytes(bytes::Bytes),
}

/// How long the response may take: all of it within the request limit (manifests, HEADs,
/// tag lists), or only its head, the body then streaming under the idle limit (blobs).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transfer {
    Whole,
    Streamed,
}

/// One request, everything the retry loop needs to send it again.
pub(crate) struct Request<'a> {
    pub(crate) op: Operation,
    pub(crate) repository: &'a Repository,
    /// The token scope: the operation's access on the repository, plus what was added.
    pub(crate) scope: Scope,
    pub(crate) url: url::Url,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Body,
}

impl<'a> Request<'a> {
    /// `op` on `repository` at `url`, no headers, no body.
    pub(crate) fn new(op: Operation, repository: &'a Repository, url: url::Url) -> Self {
        Request {
            op,
            repository,
            scope: Scope::repo(repository.path(), op.access()),
            url,
            headers: HeaderMap::new(),
            body: Body::Empty,
        }
    }

    /// Asks for push rights when `push` (a destination's read shares its push token).
    pub(crate) fn push(mut self, push: bool) -> Self {
        if push {
            self.scope = Scope::repo(self.repository.path(), Access::Push);
        }
        self
    }

    /// Also pull on another repository of the registry (a mount's `from`).
    pub(crate) fn and_pull(mut self, from: &str) -> Self {
        self.scope = self.scope.and_pull(from);
        self
    }

    /// With these headers.
    pub(crate) fn headers(mut self, headers: HeaderMap) -> Self {
        self.headers = headers;
        self
    }

    /// With these bytes as the body.
    pub(crate) fn bytes(mut self, bytes: bytes::Bytes) -> Self {
        self.body = Body::Bytes(bytes);
        self
    }

    /// The registry host as written in references.
    pub(crate) fn registry(&self) -> &'a str {
        self.repository.registry()
    }

    /// The HTTP method.
    pub(crate) fn method(&self) -> Method {
        self.op.method()
    }

    /// The error for an answer the caller did not expect, with the registry's own code.
    pub(crate) async fn status_error(
        &self,
        resp: reqwest::Response,
    ) -> super::error::RegistryError {
        super::failure::status_error(self.registry(), &self.method(), &self.url, resp).await
    }
}
