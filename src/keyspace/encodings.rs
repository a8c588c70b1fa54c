//! The limits under which small collections keep their flat encodings
//! (Redis's `hash-max-listpack-*` and `set-max-intset-entries`), and the size
//! of a list's chunks (`list-max-listpack-size`).
//!
//! Commands read them from the state, where CONFIG SET keeps a copy, and pass
//! them to the collection types; a collection that outgrows them converts to
//! its tree form once and stays there, as in Redis.

/// The conversion thresholds, with Redis 7.0's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encodings {
    /// Most fields a hash keeps as a listpack.
    pub hash_max_listpack_entries: usize,
    /// Longest field or value a listpack hash holds.
    pub hash_max_listpack_value: usize,
    /// Most members a set of integers keeps as an intset.
    pub set_max_intset_entries: usize,
    /// Most members a sorted set keeps as a listpack.
    pub zset_max_listpack_entries: usize,
    /// Longest member a listpack sorted set holds.
    pub zset_max_listpack_value: usize,
    /// Most entries (deleted ones included) in one stream block; 0 = no limit.
    pub stream_node_max_entries: usize,
    /// Most bytes in one stream block; 0 = no limit.
    pub stream_node_max_bytes: usize,
    /// `list-max-listpack-size`: a list chunk's byte limit (negative) or
    /// element limit (positive).
    pub list_max_listpack_size: i64,
}

impl Encodings {
    /// The list chunk limit.
    pub fn list_fill(&self) -> super::list::Fill {
        super::list::Fill(self.list_max_listpack_size)
    }

    /// The stream block limits.
    pub fn stream_nodes(&self) -> super::stream::NodeLimits {
        super::stream::NodeLimits {
            max_entries: self.stream_node_max_entries,
            max_bytes: self.stream_node_max_bytes,
        }
    }
}

impl Default for Encodings {
    fn default() -> Self {
        Encodings {
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            set_max_intset_entries: 512,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            stream_node_max_entries: 100,
            stream_node_max_bytes: 4096,
            list_max_listpack_size: -2,
        }
    }
}
