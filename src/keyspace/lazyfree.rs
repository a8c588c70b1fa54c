//! Freeing large values on a background thread, so that deleting a key with
//! millions of elements (eviction) does not hold the state lock while the
//! allocator walks them. Redis's `lazyfree` does the same with its BIO thread.

use std::sync::mpsc::{channel, Sender};
use std::sync::{Mutex, OnceLock};

/// Values with more elements than this are freed in the background, as
/// Redis's `LAZYFREE_THRESHOLD`.
pub const THRESHOLD: usize = 64;

type Job = Box<dyn Send>;

static QUEUE: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();

/// Drops `value` on the lazy-free thread (started on first use); if the
/// thread cannot be started, drops it here.
pub fn drop_later<T: Send + 'static>(value: T) {
    let queue = QUEUE.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name("lazyfree".into())
            .spawn(move || {
                for job in rx {
                    drop(job);
                }
            });
        if spawned.is_err() {
            tracing::warn!("cannot start the lazy-free thread; large values are freed inline");
        }
        Mutex::new(tx)
    });
    let sender = queue.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(returned) = sender.send(Box::new(value)) {
        drop(returned.0);
    }
}
