//! Snapshot persistence: the state of saves, shared with INFO persistence.
//!
//! (The format, writer, loader and scheduler live in the submodules.)

/// What INFO persistence and the save scheduler track.
#[derive(Debug, Clone)]
pub struct PersistState {
    /// Unix seconds of the last successful save (or start-up).
    pub last_save_unix: i64,
    /// Whether the last background save succeeded (`rdb_last_bgsave_status`).
    pub last_bgsave_ok: bool,
    /// Microseconds the last snapshot's keyspace clone took (INFO stats
    /// `latest_fork_usec`, the analogue of Redis's fork time).
    pub latest_clone_usec: u64,
}

impl Default for PersistState {
    fn default() -> Self {
        PersistState {
            last_save_unix: crate::keyspace::unix_ms() / 1000,
            last_bgsave_ok: true,
            latest_clone_usec: 0,
        }
    }
}

/// Whether writes must get `-MISCONF`: the last background save failed, save
/// points are configured and `stop-writes-on-bgsave-error` is on (as in Redis).
pub fn writes_refused(shared: &crate::state::Shared, state: &crate::state::State) -> bool {
    if state.persistence.last_bgsave_ok {
        return false;
    }
    let config = shared.config();
    config.stop_writes_on_bgsave_error && !config.save.is_empty()
}

/// `forkless check-dump FILE`: verifies a snapshot without starting a server.
pub fn check_dump_main(file: &std::path::Path) -> std::process::ExitCode {
    eprintln!(
        "check-dump {}: the snapshot format is not built yet",
        file.display()
    );
    std::process::ExitCode::from(2)
}

/// The fields of INFO persistence, in Redis's order and with Redis's names.
pub fn info_fields(
    shared: &crate::state::Shared,
    state: &crate::state::State,
) -> Vec<(String, String)> {
    let _ = shared;
    let p = &state.persistence;
    vec![
        ("loading".into(), "0".into()),
        ("async_loading".into(), "0".into()),
        (
            "rdb_changes_since_last_save".into(),
            state.dirty.to_string(),
        ),
        ("rdb_bgsave_in_progress".into(), "0".into()),
        ("rdb_last_save_time".into(), p.last_save_unix.to_string()),
        (
            "rdb_last_bgsave_status".into(),
            if p.last_bgsave_ok { "ok" } else { "err" }.into(),
        ),
        ("aof_enabled".into(), "0".into()),
    ]
}
