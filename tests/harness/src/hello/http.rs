//! Small blocking HTTP/1.1 clients for probing `hello`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// What `hello` says about itself: the body of `GET /`, `{"version":…,"pid":…}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloInfo {
    /// The version it was built as.
    pub version: String,
    /// The pid of the process that answered.
    pub pid: u32,
}

impl HelloInfo {
    /// Parses a JSON body holding `version` and `pid`.
    pub fn parse(body: &str) -> Option<HelloInfo> {
        let value: serde_json::Value = serde_json::from_str(body).ok()?;
        Some(HelloInfo {
            version: value.get("version")?.as_str()?.to_owned(),
            pid: u32::try_from(value.get("pid")?.as_u64()?).ok()?,
        })
    }
}

/// A complete response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header names in lower case, with their values, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: String,
}

impl HttpResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The body as [`HelloInfo`], if it is one.
    pub fn hello_info(&self) -> Option<HelloInfo> {
        HelloInfo::parse(&self.body)
    }
}

/// `GET path` on a new connection (`Connection: close`), reading the whole
/// response; every socket operation is bounded by `timeout`.
///
/// # Errors
/// Connection and I/O errors, or a malformed response.
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> io::Result<HttpResponse> {
    let (mut reader, status, headers) = send(addr, path, timeout)?;
    let body = read_body(&mut reader, &headers)?;
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// A request whose response head arrived and whose body has not been read:
/// proof that a server process is working on it right now. Start one with
/// `/sleep?ms=N`, do something to the server, then [`finish`](Self::finish).
#[derive(Debug)]
pub struct SlowRequest {
    reader: BufReader<TcpStream>,
    status: u16,
    headers: Vec<(String, String)>,
}

impl SlowRequest {
    /// Sends `GET path` and waits for the response head.
    ///
    /// # Errors
    /// Connection and I/O errors, or a malformed head.
    pub fn start(addr: SocketAddr, path: &str, timeout: Duration) -> io::Result<SlowRequest> {
        let (reader, status, headers) = send(addr, path, timeout)?;
        Ok(SlowRequest {
            reader,
            status,
            headers,
        })
    }

    /// The pid in the `x-hello-pid` header: the process serving this request.
    pub fn serving_pid(&self) -> Option<u32> {
        header(&self.headers, "x-hello-pid")?.parse().ok()
    }

    /// Reads the rest of the response.
    ///
    /// # Errors
    /// I/O errors (a reset if the server dropped the request) or a malformed body.
    pub fn finish(mut self) -> io::Result<HttpResponse> {
        let body = read_body(&mut self.reader, &self.headers)?;
        Ok(HttpResponse {
            status: self.status,
            headers: self.headers,
            body,
        })
    }
}

type Head = (BufReader<TcpStream>, u16, Vec<(String, String)>);

fn send(addr: SocketAddr, path: &str, timeout: Duration) -> io::Result<Head> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut reader = BufReader::new(stream);
    let status_line = read_line(&mut reader)?;
    let status = status_line
        .split_ascii_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| malformed(format!("status line {status_line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(&mut reader)?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| malformed(format!("header line {line:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    Ok((reader, status, headers))
}

fn read_body(
    reader: &mut BufReader<TcpStream>,
    headers: &[(String, String)],
) -> io::Result<String> {
    let mut body = Vec::new();
    if header(headers, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let size_line = read_line(reader)?;
            let size_hex = size_line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_hex, 16)
                .map_err(|_| malformed(format!("chunk size {size_line:?}")))?;
            if size == 0 {
                // Trailers (none expected) end with an empty line.
                while !read_line(reader)?.is_empty() {}
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..])?;
            read_line(reader)?;
        }
    } else if let Some(length) = header(headers, "content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| malformed(format!("content-length {length:?}")))?;
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
    } else {
        reader.read_to_end(&mut body)?;
    }
    String::from_utf8(body).map_err(|e| malformed(format!("body is not UTF-8: {e}")))
}

fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed mid-response",
        ));
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn malformed(what: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed HTTP response: {what}"),
    )
}
