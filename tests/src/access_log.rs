//! Parsing of the registry's access log.
//!
//! Why: tests assert on what the mirror actually asked a registry for (how many
//! blob GETs, whether a manifest was PUT, ...). docker-registry 2.8 writes one
//! Apache "combined" line per request to its **stdout** (the application log
//! goes to stderr), e.g.
//! `127.0.0.1 - - [24/Nov/2026:22:37:01 +0000] "PUT /v2/a/b/manifests/t HTTP/1.1" 201 0 "" "ua"`.

/// One request seen by the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// Request URI as sent (path and query), e.g. `/v2/a/b/blobs/sha256:...`.
    pub path: String,
    /// The protocol it came over, e.g. `HTTP/1.1` or `HTTP/2.0`.
    pub protocol: String,
    /// Response status code.
    pub status: u16,
    /// The client's `User-Agent` (empty when none was sent).
    pub user_agent: String,
}

/// Parses every well-formed access-log line of `text`, skipping anything else.
pub fn parse(text: &str) -> Vec<Request> {
    text.lines().filter_map(parse_line).collect()
}

/// Parses one combined-log-format line.
fn parse_line(line: &str) -> Option<Request> {
    // The request line is the first quoted field; status follows it.
    let (_, rest) = line.split_once(" \"")?;
    let (request_line, rest) = rest.split_once("\" ")?;
    let mut parts = request_line.split(' ');
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let protocol = parts.next().unwrap_or_default().to_string();
    let mut fields = rest.split(' ');
    let status = fields.next()?.parse().ok()?;
    // Remaining: size "referer" "user-agent"; the user agent is the last quoted field.
    let user_agent = rest
        .trim_end()
        .strip_suffix('"')
        .and_then(|s| s.rsplit_once('"'))
        .map(|(_, ua)| ua.to_string())
        .unwrap_or_default();
    Some(Request {
        method,
        path,
        protocol,
        status,
        user_agent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_combined_log_line() {
        let text = "time=\"x\" level=info msg=\"not an access line\"\n\
            127.0.0.1 - - [24/Nov/2026:22:37:01 +0000] \"PUT /v2/a/b/manifests/t HTTP/1.1\" 201 0 \"\" \"curl/7.88.1\"\n";
        assert_eq!(
            parse(text),
            vec![Request {
                method: "PUT".into(),
                path: "/v2/a/b/manifests/t".into(),
                protocol: "HTTP/1.1".into(),
                status: 201,
                user_agent: "curl/7.88.1".into(),
            }]
        );
    }
}
