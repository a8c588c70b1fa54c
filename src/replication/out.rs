//! A replica's outgoing stream: the bytes writers append under the state
//! lock (never waiting) and the replica's task sends, bounded by
//! `client-output-buffer-limit replica`.

use std::time::Instant;

use crate::limits::ObufLimit;

/// How the replication stream reaches one replica: bytes the writers append
/// (under the state lock, never waiting) and the replica's task sends.
#[derive(Debug, Default)]
pub struct ReplicaOut {
    inner: std::sync::Mutex<OutInner>,
    /// Wakes the replica's task when bytes arrive or it is dropped.
    pub ready: tokio::sync::Notify,
}

/// Chunks of the buffered stream: appending never copies what is held (as
/// a doubling vector would), and the slack is at most one chunk.
const OUT_CHUNK: usize = 64 * 1024;

#[derive(Debug, Default)]
struct OutInner {
    chunks: std::collections::VecDeque<Vec<u8>>,
    len: usize,
    dropped: bool,
    watch: crate::limits::ObufWatch,
}

impl ReplicaOut {
    fn lock(&self) -> std::sync::MutexGuard<'_, OutInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends stream bytes; a replica past `client-output-buffer-limit
    /// replica` is dropped (its task closes the link). Returns false then.
    pub fn push(&self, data: &[u8], limit: &ObufLimit) -> bool {
        let mut out = self.lock();
        if out.dropped {
            return false;
        }
        let mut data = data;
        while !data.is_empty() {
            let room = out.chunks.back().map_or(0, |c| c.capacity() - c.len());
            if room == 0 {
                out.chunks
                    .push_back(Vec::with_capacity(OUT_CHUNK.max(data.len().min(1 << 20))));
                continue;
            }
            let n = room.min(data.len());
            if let Some(last) = out.chunks.back_mut() {
                last.extend_from_slice(&data[..n]);
            }
            out.len += n;
            data = &data[n..];
        }
        let pending = out.len as u64;
        if out.watch.exceeded(limit, pending, Instant::now()) {
            out.dropped = true;
            out.chunks = Default::default();
            out.len = 0;
            drop(out);
            tracing::warn!(
                "Client scheduled to be closed ASAP for overcoming of output buffer limits (replica, {pending} bytes)."
            );
            self.ready.notify_one();
            return false;
        }
        drop(out);
        self.ready.notify_one();
        true
    }

    /// Takes what is buffered; `None` once the replica was dropped.
    pub fn take(&self) -> Option<std::collections::VecDeque<Vec<u8>>> {
        let mut out = self.lock();
        if out.dropped {
            return None;
        }
        out.len = 0;
        Some(std::mem::take(&mut out.chunks))
    }

    /// Bytes waiting to be sent.
    pub fn pending(&self) -> usize {
        self.lock().len
    }

    pub fn drop_link(&self) {
        self.lock().dropped = true;
        self.ready.notify_one();
    }

    pub fn is_dropped(&self) -> bool {
        self.lock().dropped
    }
}
