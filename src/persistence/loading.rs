//! The start-up load's progress, read without the state lock: the port is
//! open while the data set loads, commands Redis does not allow while loading
//! get `-LOADING`, and INFO persistence reports `loading:1` with Redis's
//! `loading_*` fields. The loading thread only bumps counters here.

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// The load in progress, if any.
#[derive(Debug, Default)]
pub struct Loading {
    active: AtomicBool,
    start_unix: AtomicI64,
    total_bytes: AtomicU64,
    loaded_bytes: AtomicU64,
    started: Mutex<Option<Instant>>,
    /// A replica loads its primary's snapshot while it keeps serving the
    /// old data set (`repl-diskless-load swapdb`): INFO's `async_loading`.
    pub async_loading: AtomicBool,
}

impl Loading {
    /// A load of a `total_bytes` file begins.
    pub fn begin(&self, total_bytes: u64) {
        self.total_bytes.store(total_bytes, Ordering::Relaxed);
        self.loaded_bytes.store(0, Ordering::Relaxed);
        self.start_unix
            .store(crate::keyspace::unix_ms() / 1000, Ordering::Relaxed);
        *self.started.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        self.active.store(true, Ordering::Release);
    }

    /// The data set is installed (or the load failed): commands run again.
    pub fn end(&self) {
        self.active.store(false, Ordering::Release);
    }

    #[inline]
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    pub fn set_loaded(&self, bytes: u64) {
        self.loaded_bytes.store(bytes, Ordering::Relaxed);
    }

    /// A reader that reports the bytes read through it as the progress.
    pub fn counting<R: Read>(&self, inner: R) -> Counting<'_, R> {
        Counting {
            inner,
            loading: self,
            read: 0,
        }
    }

    /// INFO persistence's `loading_*` fields, while a load runs (Redis's
    /// names and formats; the ETA extrapolates the bytes per second so far).
    pub fn info_fields(&self) -> Vec<(&'static str, String)> {
        if !self.is_active() {
            return Vec::new();
        }
        let total = self.total_bytes.load(Ordering::Relaxed);
        let loaded = self.loaded_bytes.load(Ordering::Relaxed).min(total);
        let elapsed = self
            .started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map_or(0.0, |s| s.elapsed().as_secs_f64());
        let perc = if total == 0 {
            0.0
        } else {
            loaded as f64 * 100.0 / total as f64
        };
        let eta = if loaded == 0 || elapsed <= 0.0 {
            1
        } else {
            ((total - loaded) as f64 / (loaded as f64 / elapsed)) as i64
        };
        vec![
            (
                "loading_start_time",
                self.start_unix.load(Ordering::Relaxed).to_string(),
            ),
            ("loading_total_bytes", total.to_string()),
            ("loading_rdb_used_mem", "0".into()),
            ("loading_loaded_bytes", loaded.to_string()),
            ("loading_loaded_perc", format!("{perc:.2}")),
            ("loading_eta_seconds", eta.to_string()),
        ]
    }
}

/// See [`Loading::counting`].
pub struct Counting<'a, R> {
    inner: R,
    loading: &'a Loading,
    read: u64,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        self.loading.set_loaded(self.read);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_follow_the_bytes_read() {
        let l = Loading::default();
        assert!(l.info_fields().is_empty());
        l.begin(200);
        let mut r = l.counting(&[7u8; 50][..]);
        let mut buf = [0u8; 100];
        assert_eq!(r.read(&mut buf).unwrap(), 50);
        let fields: std::collections::HashMap<_, _> = l.info_fields().into_iter().collect();
        assert_eq!(fields["loading_loaded_bytes"], "50");
        assert_eq!(fields["loading_total_bytes"], "200");
        assert_eq!(fields["loading_loaded_perc"], "25.00");
        l.end();
        assert!(!l.is_active());
    }
}
