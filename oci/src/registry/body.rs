//! Reading a response body with a bound. A registry (or a token service, or anything in
//! front of them) decides how much it sends; without a bound a 50 MB token is held in
//! memory and sent back as a 50 MB `Authorization` header. Each kind of answer has its own
//! limit, far above what real registries send; an answer over it is refused (read no
//! further) or, for an error body that only explains a failure, cut.
//!
//! A `Content-Length` over the limit is refused before a byte is read; a body without one
//! (chunked) is read chunk by chunk and refused as soon as it passes the limit.

use reqwest::Response;

/// A token service's answer: real tokens are a few KiB (the largest, with many scopes,
/// tens of KiB).
pub const MAX_TOKEN_RESPONSE: u64 = 1024 * 1024;

/// One page of a tag listing: a thousand tags of 128 characters are 130 KiB; a registry
/// that ignores `n` and answers a million tags at once stays under this.
pub const MAX_TAGS_PAGE: u64 = 64 * 1024 * 1024;

/// One page of the Referrers API (an image index, as large as a manifest may be).
pub const MAX_REFERRERS_PAGE: u64 = crate::manifest::MAX_MANIFEST_BYTES;

/// What is read of an error body (the rest is dropped): it only explains a failure.
pub const MAX_ERROR_BODY: usize = 64 * 1024;

/// What of a registry's own words is quoted in an error message.
pub const MAX_QUOTED: usize = 512;

/// Why a bounded body could not be read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// The body is larger than the limit; `read` bytes were seen (or announced) when that
    /// was found.
    TooLarge { read: u64, limit: u64 },
    /// The body could not be read to its end.
    Read(reqwest::Error),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TooLarge { read, limit } => write!(
                f,
                "the answer is over the {limit}-byte limit ({read} bytes or more); not read further"
            ),
            BodyError::Read(e) => write!(f, "reading the answer: {}", without_url(e)),
        }
    }
}

fn without_url(e: &reqwest::Error) -> String {
    let mut message = e.to_string();
    if let Some(url) = e.url() {
        message = message.replace(url.as_str(), "");
    }
    message
}

/// The whole body, when it is at most `limit` bytes.
pub(crate) async fn read_limited(mut resp: Response, limit: u64) -> Result<Vec<u8>, BodyError> {
    if let Some(n) = resp.content_length().filter(|n| *n > limit) {
        return Err(BodyError::TooLarge { read: n, limit });
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Read)? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() as u64 > limit {
            return Err(BodyError::TooLarge {
                read: bytes.len() as u64,
                limit,
            });
        }
    }
    Ok(bytes)
}

/// The start of an error body, at most [`MAX_ERROR_BODY`] bytes, as text (lossy): what a
/// failure can quote. A body that fails on the way gives what arrived.
pub(crate) async fn read_error_body(mut resp: Response) -> String {
    let mut bytes = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = MAX_ERROR_BODY - bytes.len();
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if bytes.len() >= MAX_ERROR_BODY {
            break;
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `text` as it can be shown inside quotes on one line: control characters, quotes and
/// backslashes escaped, cut (at a character boundary) to [`MAX_QUOTED`] bytes with `…`.
pub fn quote(text: &str) -> String {
    let text = text.trim();
    let mut out = String::new();
    for c in text.chars() {
        let piece: String = match c {
            '"' | '\\' => c.escape_debug().collect(),
            c if c.is_control() => c.escape_debug().collect(),
            c => c.to_string(),
        };
        if out.len() + piece.len() > MAX_QUOTED {
            out.push('…');
            break;
        }
        out.push_str(&piece);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_control_characters_and_quotes() {
        assert_eq!(
            quote("no space\nleft \"on\" device\u{1b}[31m"),
            r#"no space\nleft \"on\" device\u{1b}[31m"#
        );
        assert_eq!(quote("  café  "), "café", "printable text is kept, trimmed");
    }

    #[test]
    fn quoting_bounds_the_text_at_a_character_boundary() {
        let long = "é".repeat(1000);
        let q = quote(&long);
        assert!(q.len() <= MAX_QUOTED + '…'.len_utf8(), "{}", q.len());
        assert!(q.ends_with('…'));
        assert!(q.starts_with("ééé"));
        let controls = "\u{0}".repeat(1000);
        assert!(quote(&controls).len() <= MAX_QUOTED + '…'.len_utf8());
    }

    /// Serves one HTTP answer: `head` then `chunks` (chunked encoding), on loopback.
    async fn serve_once(head: &'static str, chunks: Vec<Vec<u8>>) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(head.as_bytes()).await;
            for c in chunks {
                let frame = [
                    format!("{:x}\r\n", c.len()).into_bytes(),
                    c,
                    b"\r\n".to_vec(),
                ];
                if s.write_all(&frame.concat()).await.is_err() {
                    return;
                }
            }
            let _ = s.write_all(b"0\r\n\r\n").await;
        });
        format!("http://{addr}/")
    }

    const CHUNKED: &str = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";

    #[tokio::test]
    async fn a_chunked_body_past_the_limit_is_refused_once_it_passes_it() {
        let url = serve_once(CHUNKED, vec![vec![b'a'; 64 * 1024]; 64]).await;
        let resp = reqwest::get(&url).await.unwrap();
        match read_limited(resp, 100 * 1024).await {
            Err(BodyError::TooLarge { read, limit }) => {
                assert_eq!(limit, 100 * 1024);
                assert!(read <= 200 * 1024, "stopped soon after the limit: {read}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_read_whole() {
        let url = serve_once(CHUNKED, vec![b"{\"token\":".to_vec(), b"\"t\"}".to_vec()]).await;
        let resp = reqwest::get(&url).await.unwrap();
        assert_eq!(
            read_limited(resp, 1024).await.unwrap(),
            b"{\"token\":\"t\"}"
        );
    }

    #[tokio::test]
    async fn an_announced_length_over_the_limit_is_refused_before_reading() {
        let url = serve_once(
            "HTTP/1.1 200 OK\r\ncontent-length: 50000000\r\n\r\n",
            Vec::new(),
        )
        .await;
        let resp = reqwest::get(&url).await.unwrap();
        match read_limited(resp, 1024).await {
            Err(BodyError::TooLarge { read, .. }) => assert_eq!(read, 50_000_000),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn an_error_body_is_cut_at_its_limit() {
        let url = serve_once(CHUNKED, vec![vec![b'x'; 64 * 1024]; 4]).await;
        let resp = reqwest::get(&url).await.unwrap();
        assert_eq!(read_error_body(resp).await.len(), MAX_ERROR_BODY);
    }
}
