//! Echo servers for pods (HTTP, UDP and a line-based TCP stream), each answering with the pod's
//! name and the source address it saw, and small clients for them that work in whatever
//! namespace the calling thread is in (combine with [`Netns::run`](super::Netns::run)).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

/// The answer every echo server gives: `pod=NAME client=IP:PORT`.
pub fn answer(pod: &str, client: SocketAddr) -> String {
    format!("pod={pod} client={client}")
}

/// Parses an echo answer (HTTP body, UDP datagram or a stream line) into the pod name and
/// the client address the pod saw.
pub fn parse_answer(text: &str) -> Option<(String, SocketAddr)> {
    let mut pod = None;
    let mut client = None;
    for word in text.split_whitespace() {
        if let Some(p) = word.strip_prefix("pod=") {
            pod = Some(p.to_string());
        } else if let Some(c) = word.strip_prefix("client=") {
            client = c.parse().ok();
        }
    }
    Some((pod?, client?))
}

/// HTTP/1.1 with keep-alive: any method and path gets `200` and the body
/// `pod=NAME client=IP:PORT\n` (so readiness probes of any path pass too).
pub(crate) async fn serve_http(listener: tokio::net::TcpListener, pod: String) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let pod = pod.clone();
        tokio::spawn(async move {
            let _ = http_conn(stream, peer, &pod).await;
        });
    }
}

async fn http_conn(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    pod: &str,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut stream = tokio::io::BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if stream.read_line(&mut request_line).await? == 0 {
            return Ok(());
        }
        let http10 = request_line.trim_end().ends_with("HTTP/1.0");
        let mut content_length = 0usize;
        let mut close = http10;
        loop {
            let mut h = String::new();
            if stream.read_line(&mut h).await? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let lower = h.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                content_length = v.trim().parse().unwrap_or(0);
            } else if let Some(v) = lower.strip_prefix("connection:") {
                close = v.trim() == "close" || (http10 && v.trim() != "keep-alive");
            }
        }
        if content_length > 0 {
            let mut body = vec![0u8; content_length];
            stream.read_exact(&mut body).await?;
        }
        let body = answer(pod, peer) + "\n";
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}\r\n",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        stream
            .get_mut()
            .write_all((head + &body).as_bytes())
            .await?;
        if close {
            return Ok(());
        }
    }
}

/// Every datagram gets one back: `pod=NAME client=IP:PORT`.
pub(crate) async fn serve_udp(socket: tokio::net::UdpSocket, pod: String) {
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((_, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let _ = socket.send_to(answer(&pod, peer).as_bytes(), peer).await;
    }
}

/// A long-lived TCP stream: every line received is answered with
/// `pod=NAME client=IP:PORT LINE`, for as long as the client keeps the connection.
pub(crate) async fn serve_stream(listener: tokio::net::TcpListener, pod: String) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let pod = pod.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let (r, mut w) = stream.into_split();
            let mut lines = tokio::io::BufReader::new(r).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let reply = format!("{} {line}\n", answer(&pod, peer));
                if w.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// `GET /` to `addr` on a new connection from the calling thread's namespace; returns the body
/// (for the echo server: `pod=NAME client=IP:PORT`, trimmed). A refused connection comes back
/// as `ErrorKind::ConnectionRefused`.
pub fn http_get(addr: SocketAddr, timeout: Duration) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let (head, body) = resp.split_once("\r\n\r\n").ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not HTTP: {resp:?}"),
        )
    })?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(std::io::Error::other(format!(
            "HTTP status: {}",
            head.lines().next().unwrap_or("")
        )));
    }
    Ok(body.trim().to_string())
}

/// Sends one datagram to `addr` from a new socket in the calling thread's namespace and
/// returns the answer (trimmed); `TimedOut`/`WouldBlock` when none came within `timeout`,
/// `ConnectionRefused` when an ICMP port unreachable came back.
pub fn udp_ask(addr: SocketAddr, timeout: Duration) -> std::io::Result<String> {
    let bind: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .unwrap();
    let s = UdpSocket::bind(bind)?;
    s.connect(addr)?;
    s.set_read_timeout(Some(timeout))?;
    s.send(b"ping")?;
    let mut buf = [0u8; 2048];
    let n = s.recv(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).trim().to_string())
}

/// A client of the stream server: one TCP connection, one line out and one line back per
/// [`StreamClient::ask`]. Connect it inside a namespace with
/// `ns.run(move || StreamClient::connect(addr, t))` and use it from anywhere.
pub struct StreamClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl StreamClient {
    pub fn connect(addr: SocketAddr, timeout: Duration) -> std::io::Result<StreamClient> {
        let s = TcpStream::connect_timeout(&addr, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_nodelay(true)?;
        Ok(StreamClient {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
        })
    }

    /// Sends `line` and returns the server's answer line (`pod=NAME client=IP:PORT LINE`).
    pub fn ask(&mut self, line: &str) -> std::io::Result<String> {
        writeln!(self.writer, "{line}")?;
        let mut answer = String::new();
        if self.reader.read_line(&mut answer)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(answer.trim_end().to_string())
    }

    /// The local address of the connection (the client side).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.writer.local_addr()
    }
}
