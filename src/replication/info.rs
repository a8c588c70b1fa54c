//! INFO replication's fields.

/// INFO replication, with Redis 7.0's field names and order.
pub fn info_fields(state: &crate::state::State) -> Vec<(String, String)> {
    let r = &state.repl;
    let mut f: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: String| f.push((k.to_string(), v));
    match &r.master {
        Some(m) => {
            let s = m.status();
            put("role", "slave".into());
            put("master_host", m.host.clone());
            put("master_port", m.port.to_string());
            put(
                "master_link_status",
                if s.up { "up" } else { "down" }.into(),
            );
            let io = if s.up {
                s.last_io.elapsed().as_secs() as i64
            } else {
                -1
            };
            put("master_last_io_seconds_ago", io.to_string());
            put(
                "master_sync_in_progress",
                u8::from(s.sync_in_progress).to_string(),
            );
            let read = if s.up {
                s.read_offset.max(r.offset)
            } else {
                r.offset
            };
            put("slave_read_repl_offset", read.to_string());
            put("slave_repl_offset", r.offset.to_string());
            if s.sync_in_progress {
                // As Redis's `repl_transfer_*`: an `$EOF:` stream has size 0,
                // so "left" goes negative and the percentage stays 0.
                let size = s.transfer_size;
                let read = s.transfer_read as i64;
                let perc = if size != 0 {
                    read as f64 / size as f64 * 100.0
                } else {
                    0.0
                };
                put("master_sync_total_bytes", size.to_string());
                put("master_sync_read_bytes", read.to_string());
                put("master_sync_left_bytes", (size - read).to_string());
                put("master_sync_perc", format!("{perc:.2}"));
                put(
                    "master_sync_last_io_seconds_ago",
                    s.transfer_last_io.elapsed().as_secs().to_string(),
                );
            }
            if !s.up {
                let down = s.down_since.map_or(-1, |d| d.elapsed().as_secs() as i64);
                put("master_link_down_since_seconds", down.to_string());
            }
            put("slave_priority", r.settings.priority.to_string());
            put(
                "slave_read_only",
                u8::from(r.settings.read_only).to_string(),
            );
            put("replica_announced", "1".into());
        }
        None => put("role", "master".into()),
    }
    put("connected_slaves", r.replicas.len().to_string());
    if r.master.is_none() && r.settings.min_replicas > 0 {
        put("min_slaves_good_slaves", r.good_replicas().to_string());
    }
    for (i, link) in r.replicas.iter().enumerate() {
        put(
            &format!("slave{i}"),
            format!(
                "ip={},port={},state={},offset={},lag={}",
                link.ip,
                link.port,
                link.state.name(),
                link.ack_offset,
                link.last_ack.elapsed().as_secs()
            ),
        );
    }
    put("master_failover_state", "no-failover".into());
    put("master_replid", r.replid.clone());
    put("master_replid2", r.replid2.clone());
    put("master_repl_offset", r.offset.to_string());
    put("second_repl_offset", r.second_offset.to_string());
    put(
        "repl_backlog_active",
        u8::from(r.backlog.is_some()).to_string(),
    );
    put("repl_backlog_size", r.settings.backlog_size.to_string());
    let (first, len) = r
        .backlog
        .as_ref()
        .map_or((0, 0), |b| (b.first_offset(), b.len()));
    put("repl_backlog_first_byte_offset", first.to_string());
    put("repl_backlog_histlen", len.to_string());
    f
}
