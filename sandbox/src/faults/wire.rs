//! Just enough HTTP/1.1 framing for a one-request-per-connection proxy.
//!
//! The proxy reads one request (head, then a `Content-Length` or chunked body), forwards it
//! with `Connection: close`, and reads the upstream's whole answer until it closes: no
//! keep-alive, no pipelining, so framing stays a few functions that tests can trust.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

/// The largest request head the proxy reads.
const MAX_HEAD: usize = 64 * 1024;
/// The largest request body the proxy reads (SARIF uploads are a few MiB at most).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// One request as read from the client.
#[derive(Debug)]
pub(super) struct Request {
    pub method: String,
    /// The request target as sent (`/v2/x/manifests/sha256:…?x=1`).
    pub target: String,
    /// Header lines as sent, without the line ends.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The request as bytes for the upstream, with `Connection: close` in place of any
    /// connection management headers.
    pub fn to_upstream(&self) -> Vec<u8> {
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.target).into_bytes();
        for (name, value) in &self.headers {
            let hop = [
                "connection",
                "keep-alive",
                "proxy-connection",
                "transfer-encoding",
            ];
            if hop.iter().any(|h| name.eq_ignore_ascii_case(h)) {
                continue;
            }
            if name.eq_ignore_ascii_case("content-length") {
                continue;
            }
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        if !self.body.is_empty() || matches!(self.method.as_str(), "POST" | "PUT" | "PATCH") {
            out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"Connection: close\r\n\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// Reads one request; `Ok(None)` when the client closed before sending one.
pub(super) async fn read_request(
    stream: &mut (impl AsyncRead + Unpin),
) -> io::Result<Option<Request>> {
    let mut buffer = Vec::new();
    let head_end = loop {
        if let Some(end) = find_head_end(&buffer) {
            break end;
        }
        if buffer.len() > MAX_HEAD {
            return Err(invalid("request head too large"));
        }
        let mut chunk = [0u8; 8192];
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return if buffer.is_empty() {
                Ok(None)
            } else {
                Err(invalid("the client closed mid-head"))
            };
        }
        buffer.extend_from_slice(&chunk[..read]);
    };

    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(invalid("malformed request line"));
    };
    let headers: Vec<(String, String)> = lines
        .filter(|line| !line.is_empty())
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut request = Request {
        method: method.to_string(),
        target: target.to_string(),
        headers,
        body: Vec::new(),
    };

    // The body: what already arrived after the head, plus the rest.
    let mut rest = buffer[head_end + 4..].to_vec();
    let chunked = request
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        request.body = read_chunked(stream, rest).await?;
    } else {
        let length: usize = request
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if length > MAX_BODY {
            return Err(invalid("request body too large"));
        }
        while rest.len() < length {
            let mut chunk = vec![0u8; (length - rest.len()).min(64 * 1024)];
            let read = stream.read(&mut chunk).await?;
            if read == 0 {
                return Err(invalid("the client closed mid-body"));
            }
            rest.extend_from_slice(&chunk[..read]);
        }
        rest.truncate(length);
        request.body = rest;
    }
    Ok(Some(request))
}

/// Decodes a chunked body whose first bytes are `buffered`.
async fn read_chunked(
    stream: &mut (impl AsyncRead + Unpin),
    mut buffered: Vec<u8>,
) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        // A size line.
        let line_end = loop {
            if let Some(end) = buffered.windows(2).position(|w| w == b"\r\n") {
                break end;
            }
            fill(stream, &mut buffered).await?;
        };
        let size_text = String::from_utf8_lossy(&buffered[..line_end]).into_owned();
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| invalid("bad chunk size"))?;
        buffered.drain(..line_end + 2);
        if body.len() + size > MAX_BODY {
            return Err(invalid("request body too large"));
        }
        // The chunk and its CRLF (for the last chunk: the empty trailer line).
        while buffered.len() < size + 2 {
            fill(stream, &mut buffered).await?;
        }
        body.extend_from_slice(&buffered[..size]);
        buffered.drain(..size + 2);
        if size == 0 {
            return Ok(body);
        }
    }
}

async fn fill(stream: &mut (impl AsyncRead + Unpin), buffer: &mut Vec<u8>) -> io::Result<()> {
    let mut chunk = [0u8; 8192];
    let read = stream.read(&mut chunk).await?;
    if read == 0 {
        return Err(invalid("the client closed mid-body"));
    }
    buffer.extend_from_slice(&chunk[..read]);
    Ok(())
}

/// Where the blank line ending a head starts.
pub(super) fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|w| w == b"\r\n\r\n")
}

/// Rewrites an upstream answer's head for the client: `Connection: close`, and every
/// mention of the upstream's base URL in a header (a `Link`, a `Location`) pointed at the
/// proxy instead. Returns the new head (with its blank line) and the body.
pub(super) fn rewrite_response(answer: &[u8], upstream_base: &str, proxy_base: &str) -> Vec<u8> {
    let Some(head_end) = find_head_end(answer) else {
        return answer.to_vec();
    };
    let head = String::from_utf8_lossy(&answer[..head_end]);
    let mut out = String::new();
    for (index, line) in head.split("\r\n").enumerate() {
        if index > 0 {
            let name = line.split(':').next().unwrap_or_default().trim();
            if name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("keep-alive") {
                continue;
            }
        }
        out.push_str(&line.replace(upstream_base, proxy_base));
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&answer[head_end + 4..]);
    bytes
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_a_request_with_a_body_and_forwards_it_closing() {
        let raw = b"POST /x?y=1 HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\
                    Content-Length: 5\r\n\r\nhello";
        let request = read_request(&mut &raw[..]).await.unwrap().unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(request.target, "/x?y=1");
        assert_eq!(request.body, b"hello");
        let sent = String::from_utf8(request.to_upstream()).unwrap();
        assert!(sent.contains("Connection: close\r\n"), "{sent}");
        assert!(!sent.contains("keep-alive"), "{sent}");
        assert!(sent.ends_with("\r\n\r\nhello"), "{sent}");
    }

    #[tokio::test]
    async fn reads_a_chunked_body() {
        let raw =
            b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let request = read_request(&mut &raw[..]).await.unwrap().unwrap();
        assert_eq!(request.body, b"abcde");
    }

    #[test]
    fn points_links_at_the_proxy() {
        let answer = b"HTTP/1.1 200 OK\r\nLink: <http://127.0.0.1:1/orgs?page=2>; rel=\"next\"\r\n\
                       Connection: keep-alive\r\n\r\n[]";
        let out = rewrite_response(answer, "http://127.0.0.1:1", "http://127.0.0.1:2");
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("<http://127.0.0.1:2/orgs?page=2>"), "{out}");
        assert!(out.ends_with("Connection: close\r\n\r\n[]"), "{out}");
        assert_eq!(out.matches("Connection").count(), 1, "{out}");
    }
}
