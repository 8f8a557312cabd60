//! Protocol violations on `/ws` close by the book (RFC 6455 §7.1.7): a close frame with 1002,
//! 1007 or 1009 reaches the client before the TCP close, even while it is still uploading an
//! oversized frame. Frames are written byte by byte over a raw socket, as a broken client would.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;

use crate::common::TestServer;

const MASK: [u8; 4] = [0x11, 0x22, 0x33, 0x44];

/// One frame: `first` is FIN/RSV/opcode, the payload masked unless `masked` is false.
fn frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![first];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | u8::try_from(n).unwrap_or(0)),
        n if n <= 0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&u16::try_from(n).unwrap_or(0).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        out.extend_from_slice(&MASK);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

async fn upgrade(addr: SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.expect("upgrade");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tcp.read_exact(&mut byte).await.expect("101");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    tcp
}

/// Reads server frames until a close frame; its code. Panics on a reset or EOF before it.
async fn close_code(read: &mut OwnedReadHalf) -> u16 {
    loop {
        let mut head = [0u8; 2];
        read.read_exact(&mut head)
            .await
            .expect("a close frame before the connection ends");
        let len = match head[1] & 0x7f {
            126 => u64::from(read.read_u16().await.expect("len16")),
            127 => read.read_u64().await.expect("len64"),
            n => u64::from(n),
        };
        let mut payload = vec![0u8; usize::try_from(len).expect("len")];
        read.read_exact(&mut payload).await.expect("payload");
        if head[0] & 0x0f == 0x8 {
            assert!(payload.len() >= 2, "a close frame with a code");
            return u16::from_be_bytes([payload[0], payload[1]]);
        }
    }
}

async fn code_after(addr: SocketAddr, bytes: Vec<u8>) -> u16 {
    let (mut read, mut write) = upgrade(addr).await.into_split();
    write.write_all(&bytes).await.expect("send");
    close_code(&mut read).await
}

#[tokio::test]
async fn violations_close_with_1002_and_bad_utf8_with_1007() {
    let server = TestServer::start().await;
    let addr = server.addr;
    let mut cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "invalid UTF-8 text",
            frame(0x81, &[0xce, 0xba, 0xff, 0xfe], true),
            1007,
        ),
        ("reserved bit RSV1", frame(0xc1, b"{}", true), 1002),
        ("reserved opcode 3", frame(0x83, b"x", true), 1002),
        ("reserved control opcode 11", frame(0x8b, b"", true), 1002),
        (
            "unmasked client frame",
            frame(0x81, br#"{"type":"keepalive"}"#, false),
            1002,
        ),
        ("fragmented ping", frame(0x09, b"x", true), 1002),
        ("ping over 125 bytes", frame(0x89, &[b'p'; 126], true), 1002),
        ("stray continuation", frame(0x80, b"x", true), 1002),
        ("1-byte close payload", frame(0x88, &[0x03], true), 1002),
    ];
    let mut bad_reason = vec![0x03, 0xe8];
    bad_reason.extend_from_slice(&[0xff, 0xfe]);
    cases.push((
        "close reason not UTF-8",
        frame(0x88, &bad_reason, true),
        1007,
    ));
    for (what, bytes, expected) in cases {
        assert_eq!(code_after(addr, bytes).await, expected, "{what}");
    }
}

#[tokio::test]
async fn an_oversized_upload_still_receives_1009() {
    let server = TestServer::start_with(r#"{"realtime": {"maxFrameBytes": 1024}}"#).await;
    let (mut read, mut write) = upgrade(server.addr).await.into_split();
    // A 4 MiB text frame: the header first, then the payload in pieces while the server
    // has already refused it.
    let size: u64 = 4 * 1024 * 1024;
    let mut header = vec![0x81, 0x80 | 127];
    header.extend_from_slice(&size.to_be_bytes());
    header.extend_from_slice(&MASK);
    let uploader = tokio::spawn(async move {
        write.write_all(&header).await.expect("header");
        let chunk = vec![b'x' ^ MASK[0]; 64 * 1024];
        let mut sent = 0u64;
        while sent < size {
            if write.write_all(&chunk).await.is_err() {
                break;
            }
            sent += chunk.len() as u64;
        }
        write
    });
    assert_eq!(close_code(&mut read).await, 1009);
    let _ = uploader.await;
}
