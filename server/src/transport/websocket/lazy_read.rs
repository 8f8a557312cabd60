//! The byte stream under tungstenite, with a read buffer that exists only while a burst is
//! being read.
//!
//! tungstenite reads into its own buffer, and that buffer is allocated up front and kept for
//! the connection's life: sized for throughput, it is most of an idle connection's memory;
//! sized for idle memory, every burst costs one `read` system call per few hundred bytes.
//! [`LazyReadBuffer`] lets the socket be configured small ([`super::READ_BUFFER_BYTES`]) without
//! the system calls: when tungstenite asks for fewer than [`READ_CHUNK_BYTES`], the socket is
//! read into a chunk on the stack, tungstenite gets what fits, and only the rest is kept on the
//! heap ([`LazyReadBuffer::spare`]), handed out on the next reads and freed once taken. An idle
//! connection holds no read-ahead at all.
//!
//! Owns: that remainder. Never: parses, reorders or drops a byte, or holds more than one chunk
//! (tungstenite takes the remainder before the socket is read again). Writes pass straight
//! through.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes read from the socket at once (on the stack) when the caller's buffer is smaller.
pub const READ_CHUNK_BYTES: usize = 16 * 1024;

/// A socket whose reads go through a stack chunk; see the module documentation.
#[derive(Debug)]
pub struct LazyReadBuffer<S> {
    inner: S,
    /// Bytes read from the socket that the caller has not taken yet (empty, with no
    /// allocation, between bursts).
    spare: Vec<u8>,
    /// How much of `spare` was taken already.
    taken: usize,
}

impl<S> LazyReadBuffer<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            spare: Vec::new(),
            taken: 0,
        }
    }

    /// Bytes of heap the read-ahead holds right now (0 when idle).
    #[cfg(test)]
    fn spare_capacity(&self) -> usize {
        self.spare.capacity()
    }

    /// Moves as much of the remainder into `buf` as fits; frees it once all is taken.
    fn hand_out_spare(&mut self, buf: &mut ReadBuf<'_>) {
        let left = &self.spare[self.taken..];
        let n = left.len().min(buf.remaining());
        buf.put_slice(&left[..n]);
        self.taken += n;
        if self.taken == self.spare.len() {
            self.spare = Vec::new();
            self.taken = 0;
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for LazyReadBuffer<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.taken < this.spare.len() {
            this.hand_out_spare(buf);
            return Poll::Ready(Ok(()));
        }
        if buf.remaining() >= READ_CHUNK_BYTES {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let mut storage = [MaybeUninit::<u8>::uninit(); READ_CHUNK_BYTES];
        let mut chunk = ReadBuf::uninit(&mut storage);
        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut chunk))?;
        let read = chunk.filled();
        let n = read.len().min(buf.remaining());
        buf.put_slice(&read[..n]);
        if n < read.len() {
            this.spare = read[n..].to_vec();
            this.taken = 0;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for LazyReadBuffer<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use tokio::io::AsyncReadExt;

    /// A socket that delivers these chunks, one per read, then the end of the stream, and
    /// counts the reads it served.
    struct Chunks {
        chunks: VecDeque<Vec<u8>>,
        reads: usize,
    }

    impl AsyncRead for Chunks {
        fn poll_read(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            this.reads += 1;
            if let Some(mut chunk) = this.chunks.pop_front() {
                let n = chunk.len().min(buf.remaining());
                buf.put_slice(&chunk[..n]);
                if n < chunk.len() {
                    this.chunks.push_front(chunk.split_off(n));
                }
            }
            Poll::Ready(Ok(()))
        }
    }

    fn socket(chunks: &[&[u8]]) -> LazyReadBuffer<Chunks> {
        LazyReadBuffer::new(Chunks {
            chunks: chunks.iter().map(|c| c.to_vec()).collect(),
            reads: 0,
        })
    }

    #[tokio::test]
    async fn a_burst_is_read_once_and_handed_out_in_small_pieces_in_order() {
        let burst: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
        let mut io = socket(&[&burst]);
        let mut out = Vec::new();
        let mut small = [0u8; 512];
        while out.len() < burst.len() {
            let n = io.read(&mut small).await.expect("read");
            assert!(n > 0 && n <= 512);
            out.extend_from_slice(&small[..n]);
        }
        assert_eq!(out, burst);
        assert_eq!(io.inner.reads, 1, "one socket read for the whole burst");
        assert_eq!(io.spare_capacity(), 0, "the remainder is freed once taken");
        assert_eq!(io.read(&mut small).await.expect("end"), 0);
    }

    #[tokio::test]
    async fn reads_that_fit_keep_nothing_and_large_buffers_read_directly() {
        let mut io = socket(&[b"hello", b"world"]);
        let mut small = [0u8; 64];
        assert_eq!(io.read(&mut small).await.expect("read"), 5);
        assert_eq!(&small[..5], b"hello");
        assert_eq!(io.spare_capacity(), 0);
        let mut large = vec![0u8; READ_CHUNK_BYTES];
        assert_eq!(io.read(&mut large).await.expect("read"), 5);
        assert_eq!(&large[..5], b"world");
    }
}
