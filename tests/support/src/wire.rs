//! Talking to the servers from a test with nothing but tokio: one Redis command over RESP, and
//! a plain HTTP/1.1 request, both on loopback.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends one command to Redis over RESP and returns the reply as text (integers and bulk
/// strings as their value, nil as `(nil)`, arrays as lines).
pub async fn redis(url: &str, args: &[&str]) -> String {
    let address = url.trim_start_matches("redis://");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("redis reachable");
    let mut command = format!("*{}\r\n", args.len());
    for arg in args {
        command.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(command.as_bytes()).await.unwrap();
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let read = stream.read(&mut chunk).await.unwrap();
        buffer.extend_from_slice(&chunk[..read]);
        if let Some(text) = parse_resp(&buffer) {
            return text;
        }
        if read == 0 {
            panic!("redis closed the connection");
        }
    }
}

fn parse_resp(buffer: &[u8]) -> Option<String> {
    fn one(data: &[u8]) -> Option<(String, usize)> {
        let end = data.windows(2).position(|w| w == b"\r\n")?;
        let line = std::str::from_utf8(&data[1..end]).ok()?;
        match data.first()? {
            b'+' | b'-' | b':' => Some((line.to_owned(), end + 2)),
            b'$' => {
                let len: i64 = line.parse().ok()?;
                if len < 0 {
                    return Some(("(nil)".into(), end + 2));
                }
                let start = end + 2;
                let stop = start + len as usize;
                if data.len() < stop + 2 {
                    return None;
                }
                Some((
                    String::from_utf8_lossy(&data[start..stop]).into_owned(),
                    stop + 2,
                ))
            }
            b'*' => {
                let count: i64 = line.parse().ok()?;
                let mut offset = end + 2;
                let mut items = Vec::new();
                for _ in 0..count.max(0) {
                    let (item, used) = one(&data[offset..])?;
                    items.push(item);
                    offset += used;
                }
                Some((items.join("\n"), offset))
            }
            _ => None,
        }
    }
    one(buffer).map(|(text, _)| text)
}

/// A plain HTTP/1.1 GET on loopback; returns the status code and body.
pub async fn http_get(port: u16, path: &str) -> (u16, String) {
    http_request(port, "GET", path, &[], "").await
}

/// A plain HTTP/1.1 request with a method, optional headers and body; returns the status
/// code and body.
pub async fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("http up");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
