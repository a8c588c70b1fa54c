//! The slow log: commands slower than `slowlog-log-slower-than`, newest first,
//! as SLOWLOG GET shows them. Dispatch feeds it; SLOWLOG reads it.

use std::collections::VecDeque;

use bytes::Bytes;

/// Redis keeps at most this many arguments of a slow command...
const MAX_ARGC: usize = 32;
/// ... and at most this many bytes of each.
const MAX_ARG_LEN: usize = 128;

/// One slow log entry.
#[derive(Debug, Clone)]
pub struct SlowEntry {
    pub id: u64,
    pub unix_secs: i64,
    pub usec: u64,
    pub args: Vec<Bytes>,
    pub addr: String,
    pub name: Bytes,
}

/// The slow log: newest first, at most `slowlog-max-len` entries.
#[derive(Debug, Default)]
pub struct SlowLog {
    next_id: u64,
    pub entries: VecDeque<SlowEntry>,
}

impl SlowLog {
    pub fn push(&mut self, entry: SlowEntry, max_len: usize) {
        self.entries.push_front(entry);
        self.entries.truncate(max_len);
    }

    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id - 1
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The arguments as the slow log keeps them (Redis's slowlogCreateEntry).
pub fn slowlog_args(args: &[Bytes]) -> Vec<Bytes> {
    let kept = args.len().min(MAX_ARGC);
    let mut out = Vec::with_capacity(kept);
    for (i, arg) in args.iter().take(kept).enumerate() {
        if kept != args.len() && i == kept - 1 {
            let more = args.len() - kept + 1;
            out.push(Bytes::from(format!("... ({more} more arguments)")));
        } else if arg.len() > MAX_ARG_LEN {
            let mut s = arg[..MAX_ARG_LEN].to_vec();
            s.extend_from_slice(format!("... ({} more bytes)", arg.len() - MAX_ARG_LEN).as_bytes());
            out.push(Bytes::from(s));
        } else {
            // Kept for as long as the entry: its own bytes, not a slice
            // of the read buffer.
            out.push(crate::protocol::detach(arg));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn slowlog_truncates_like_redis() {
        let long = "x".repeat(200);
        let args = vec![b("SET"), b("k"), b(&long)];
        let kept = slowlog_args(&args);
        assert_eq!(kept[2].len(), 128 + "... (72 more bytes)".len());
        assert!(kept[2].ends_with(b"... (72 more bytes)"));
        let many: Vec<Bytes> = (0..40).map(|i| b(&i.to_string())).collect();
        let kept = slowlog_args(&many);
        assert_eq!(kept.len(), 32);
        assert_eq!(kept[31], b("... (9 more arguments)"));
    }

    #[test]
    fn slowlog_keeps_newest_within_max_len() {
        let mut log = SlowLog::default();
        for i in 0..5 {
            let id = log.next_id();
            log.push(
                SlowEntry {
                    id,
                    unix_secs: i,
                    usec: 1,
                    args: vec![],
                    addr: String::new(),
                    name: Bytes::new(),
                },
                3,
            );
        }
        assert_eq!(log.len(), 3);
        assert_eq!(log.entries[0].id, 4);
    }
}
