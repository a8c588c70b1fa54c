//! INFO: the server's report in Redis 7's sections and field names, so
//! dashboards, exporters and client libraries built for Redis read it unchanged.
//!
//! Memory figures come from the allocator ([`crate::alloc`]), CPU figures
//! from `/proc`; instantaneous rates come from
//! [`crate::metrics::Instantaneous`], which [`crate::metrics::sample_metrics`] fills ten times a second as
//! Redis's `serverCron` does.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use crate::commands::connection::REDIS_COMPAT_VERSION;
use crate::commands::introspection::MemoryOverview;
use crate::commands::Ctx;
use crate::errors::CmdResult;
use crate::reply::Reply;
use crate::state::Shared;

/// Sections `INFO` and `INFO default` print, in Redis's order.
const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
];

/// Every section, in Redis's order (`INFO all` / `INFO everything`).
const ALL_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
];

type Fields = Vec<(String, String)>;

pub fn info(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let wanted = requested_sections(&args[1..]);
    let mut parts = Vec::new();
    for section in ALL_SECTIONS.iter().filter(|s| wanted.contains(s)) {
        let fields = section_fields(ctx, section);
        let mut text = format!("# {}\r\n", title(section));
        for (k, v) in fields {
            text.push_str(&k);
            text.push(':');
            text.push_str(&v);
            text.push_str("\r\n");
        }
        parts.push(text);
    }
    Ok(Reply::Verbatim(parts.join("\r\n")))
}

/// The canonical sections named by INFO's arguments (case-insensitive;
/// unknown names select nothing, as in Redis).
fn requested_sections(args: &[Bytes]) -> Vec<&'static str> {
    if args.is_empty() {
        return DEFAULT_SECTIONS.to_vec();
    }
    let mut wanted = Vec::new();
    for arg in args {
        let name = String::from_utf8_lossy(arg).to_ascii_lowercase();
        let names: &[&'static str] = match name.as_str() {
            "default" => DEFAULT_SECTIONS,
            "all" | "everything" => ALL_SECTIONS,
            other => match ALL_SECTIONS.iter().find(|s| **s == other) {
                Some(s) => std::slice::from_ref(s),
                None => &[],
            },
        };
        wanted.extend_from_slice(names);
    }
    wanted
}

fn title(section: &str) -> &'static str {
    match section {
        "server" => "Server",
        "clients" => "Clients",
        "memory" => "Memory",
        "persistence" => "Persistence",
        "stats" => "Stats",
        "replication" => "Replication",
        "cpu" => "CPU",
        "modules" => "Modules",
        "commandstats" => "Commandstats",
        "errorstats" => "Errorstats",
        "latencystats" => "Latencystats",
        "cluster" => "Cluster",
        _ => "Keyspace",
    }
}

fn section_fields(ctx: &mut Ctx<'_>, section: &str) -> Fields {
    match section {
        "server" => server(ctx.shared),
        "clients" => clients(ctx),
        "memory" => memory(ctx),
        "persistence" => crate::persistence::info_fields(ctx.shared, ctx.state),
        "stats" => stats(ctx),
        "replication" => crate::replication::info_fields(ctx.state),
        "cpu" => cpu(),
        "cluster" => fields(&[("cluster_enabled", "0".into())]),
        "keyspace" => keyspace(ctx),
        "commandstats" => commandstats(ctx),
        "errorstats" => ctx
            .state
            .stats
            .error_codes
            .iter()
            .map(|(code, n)| (format!("errorstat_{code}"), format!("count={n}")))
            .collect(),
        // Modules and latency percentiles: not tracked, shown empty.
        _ => Vec::new(),
    }
}

fn fields(pairs: &[(&str, String)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn read_proc(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn server(shared: &Shared) -> Fields {
    let uptime = shared.started.elapsed().as_secs();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let config = shared.config();
    let os = format!(
        "Linux {} {}",
        read_proc("/proc/sys/kernel/osrelease").trim(),
        std::env::consts::ARCH
    );
    let executable = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    fields(&[
        ("redis_version", REDIS_COMPAT_VERSION.into()),
        ("forkless_version", env!("CARGO_PKG_VERSION").into()),
        ("redis_git_sha1", "00000000".into()),
        ("redis_git_dirty", "0".into()),
        ("redis_build_id", "0".into()),
        ("redis_mode", "standalone".into()),
        ("os", os),
        ("arch_bits", (usize::BITS).to_string()),
        ("monotonic_clock", "POSIX clock_gettime".into()),
        ("multiplexing_api", "epoll".into()),
        ("atomicvar_api", "c11-builtin".into()),
        ("gcc_version", "0.0.0".into()),
        ("process_id", std::process::id().to_string()),
        ("process_supervised", "no".into()),
        ("run_id", shared.run_id.clone()),
        (
            "tcp_port",
            shared.bound_port.load(Ordering::Relaxed).to_string(),
        ),
        ("server_time_usec", now.as_micros().to_string()),
        ("uptime_in_seconds", uptime.to_string()),
        ("uptime_in_days", (uptime / 86400).to_string()),
        ("hz", config.hz.to_string()),
        ("configured_hz", config.hz.to_string()),
        ("lru_clock", ((now.as_secs()) & ((1 << 24) - 1)).to_string()),
        ("executable", executable),
        (
            "config_file",
            config
                .config_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        ),
        ("io_threads_active", "0".into()),
    ])
}

fn clients(ctx: &Ctx<'_>) -> Fields {
    fields(&[
        ("connected_clients", ctx.shared.clients.len().to_string()),
        ("cluster_connections", "0".into()),
        ("maxclients", ctx.shared.config().maxclients.to_string()),
        ("client_recent_max_input_buffer", "0".into()),
        ("client_recent_max_output_buffer", "0".into()),
        (
            "blocked_clients",
            (ctx.state.blocking.blocked_clients() + ctx.state.repl.waiting_clients()).to_string(),
        ),
        (
            "total_blocking_keys",
            ctx.state.blocking.blocking_keys().to_string(),
        ),
        ("tracking_clients", "0".into()),
        ("clients_in_timeout_table", "0".into()),
    ])
}

/// Bytes the way Redis's bytesToHuman prints them (`965.67K`, `200B`).
pub fn human_bytes(n: u64) -> String {
    const UNITS: &[(u64, &str)] = &[
        (1 << 50, "P"),
        (1 << 40, "T"),
        (1 << 30, "G"),
        (1 << 20, "M"),
        (1 << 10, "K"),
    ];
    for (size, unit) in UNITS {
        if n >= *size {
            return format!("{:.2}{unit}", n as f64 / *size as f64);
        }
    }
    format!("{n}B")
}

/// A `Name:   123 kB` line of a /proc status-like file, in bytes.
fn proc_kb(path: &str, name: &str) -> u64 {
    read_proc(path)
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// INFO memory: the allocator's figures and what Redis derives from them
/// ([`MemoryOverview`], shared with MEMORY STATS and MEMORY DOCTOR). There is
/// no scripting engine, replication backlog or AOF: those figures are zero.
/// Every field Redis 7.0 prints is present, in Redis's order and formats, so
/// exporters find what they look for.
fn memory(ctx: &Ctx<'_>) -> Fields {
    let config = ctx.shared.config();
    let maxmemory = config.extra_i64("maxmemory", 0).max(0) as u64;
    let policy = config
        .extra
        .get("maxmemory-policy")
        .cloned()
        .unwrap_or_else(|| "noeviction".into());
    let m = MemoryOverview::read(&ctx.state.keyspace);
    let used = m.used();
    let total = proc_kb("/proc/meminfo", "MemTotal:");
    let (frag, frag_bytes) = m.fragmentation();
    let (afrag, afrag_bytes) = m.allocator_frag();
    let (arss, arss_bytes) = m.allocator_rss();
    let (extra, extra_bytes) = m.rss_overhead();
    let zero = || "0".to_string();
    let sc = &ctx.state.scripting;
    let lua = sc.lua_memory() as u64;
    let scripts_eval = sc.cached_bytes() as u64;
    let functions = sc.functions.code_bytes() as u64;
    fields(&[
        ("used_memory", used.to_string()),
        ("used_memory_human", human_bytes(used)),
        ("used_memory_rss", m.rss.to_string()),
        ("used_memory_rss_human", human_bytes(m.rss)),
        ("used_memory_peak", m.peak.to_string()),
        ("used_memory_peak_human", human_bytes(m.peak)),
        ("used_memory_peak_perc", format!("{:.2}%", m.peak_perc())),
        ("used_memory_overhead", m.overhead().to_string()),
        ("used_memory_startup", m.startup.to_string()),
        ("used_memory_dataset", m.dataset().to_string()),
        (
            "used_memory_dataset_perc",
            format!("{:.2}%", m.dataset_perc()),
        ),
        ("allocator_allocated", m.allocator.allocated.to_string()),
        ("allocator_active", m.allocator.active.to_string()),
        ("allocator_resident", m.allocator.resident.to_string()),
        ("total_system_memory", total.to_string()),
        ("total_system_memory_human", human_bytes(total)),
        ("used_memory_lua", lua.to_string()),
        ("used_memory_vm_eval", lua.to_string()),
        ("used_memory_lua_human", human_bytes(lua)),
        ("used_memory_scripts_eval", scripts_eval.to_string()),
        ("number_of_cached_scripts", sc.cached_scripts().to_string()),
        (
            "number_of_functions",
            sc.functions.function_count().to_string(),
        ),
        (
            "number_of_libraries",
            sc.functions.library_count().to_string(),
        ),
        ("used_memory_vm_functions", zero()),
        ("used_memory_vm_total", lua.to_string()),
        ("used_memory_vm_total_human", human_bytes(lua)),
        ("used_memory_functions", functions.to_string()),
        (
            "used_memory_scripts",
            (scripts_eval + functions).to_string(),
        ),
        (
            "used_memory_scripts_human",
            human_bytes(scripts_eval + functions),
        ),
        ("maxmemory", maxmemory.to_string()),
        ("maxmemory_human", human_bytes(maxmemory)),
        ("maxmemory_policy", policy),
        ("allocator_frag_ratio", format!("{afrag:.2}")),
        ("allocator_frag_bytes", afrag_bytes.to_string()),
        ("allocator_rss_ratio", format!("{arss:.2}")),
        ("allocator_rss_bytes", arss_bytes.to_string()),
        ("rss_overhead_ratio", format!("{extra:.2}")),
        ("rss_overhead_bytes", extra_bytes.to_string()),
        ("mem_fragmentation_ratio", format!("{frag:.2}")),
        ("mem_fragmentation_bytes", frag_bytes.to_string()),
        // What a running snapshot pins is left out of the budget, as Redis
        // leaves out the fork's copy-on-write pages.
        (
            "mem_not_counted_for_evict",
            crate::keyspace::pinned::bytes().to_string(),
        ),
        (
            "mem_snapshot_pinned",
            crate::keyspace::pinned::bytes().to_string(),
        ),
        ("mem_replication_backlog", zero()),
        ("mem_total_replication_buffers", zero()),
        ("mem_clients_slaves", zero()),
        (
            "mem_clients_normal",
            ctx.shared.clients.memory.total().to_string(),
        ),
        ("mem_cluster_links", zero()),
        ("mem_aof_buffer", zero()),
        ("mem_allocator", crate::alloc::name()),
        ("active_defrag_running", zero()),
        ("lazyfree_pending_objects", zero()),
        ("lazyfreed_objects", zero()),
    ])
}

fn stats(ctx: &Ctx<'_>) -> Fields {
    let net = &ctx.shared.net;
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed).to_string();
    let s = &ctx.state.stats;
    let rates = &ctx.state.instantaneous;
    fields(&[
        (
            "total_connections_received",
            load(&net.total_connections_received),
        ),
        (
            "total_commands_processed",
            s.total_commands_processed.to_string(),
        ),
        ("instantaneous_ops_per_sec", rates.ops_per_sec().to_string()),
        ("total_net_input_bytes", load(&net.net_input_bytes)),
        ("total_net_output_bytes", load(&net.net_output_bytes)),
        ("total_net_repl_input_bytes", "0".into()),
        ("total_net_repl_output_bytes", "0".into()),
        (
            "instantaneous_input_kbps",
            format!("{:.2}", rates.input_kbps()),
        ),
        (
            "instantaneous_output_kbps",
            format!("{:.2}", rates.output_kbps()),
        ),
        ("instantaneous_input_repl_kbps", "0.00".into()),
        ("instantaneous_output_repl_kbps", "0.00".into()),
        ("rejected_connections", load(&net.rejected_connections)),
        ("sync_full", ctx.state.repl.sync_full.to_string()),
        (
            "sync_partial_ok",
            ctx.state.repl.sync_partial_ok.to_string(),
        ),
        (
            "sync_partial_err",
            ctx.state.repl.sync_partial_err.to_string(),
        ),
        (
            "expired_keys",
            ctx.state.keyspace.expired_count().to_string(),
        ),
        ("expired_stale_perc", "0.00".into()),
        ("expired_time_cap_reached_count", "0".into()),
        ("expire_cycle_cpu_milliseconds", "0".into()),
        ("evicted_keys", ctx.state.eviction.evicted_keys.to_string()),
        (
            "evicted_clients",
            ctx.shared
                .clients
                .memory
                .evicted
                .load(std::sync::atomic::Ordering::Relaxed)
                .to_string(),
        ),
        (
            "total_eviction_exceeded_time",
            ctx.state.eviction.total_exceeded_ms().to_string(),
        ),
        (
            "current_eviction_exceeded_time",
            ctx.state.eviction.current_exceeded_ms().to_string(),
        ),
        ("keyspace_hits", s.keyspace_hits.to_string()),
        ("keyspace_misses", s.keyspace_misses.to_string()),
        (
            "pubsub_channels",
            ctx.state
                .pubsub
                .active(crate::pubsub::Kind::Channel)
                .to_string(),
        ),
        (
            "pubsub_patterns",
            ctx.state
                .pubsub
                .active(crate::pubsub::Kind::Pattern)
                .to_string(),
        ),
        (
            "pubsubshard_channels",
            ctx.state
                .pubsub
                .active(crate::pubsub::Kind::Shard)
                .to_string(),
        ),
        (
            "latest_fork_usec",
            ctx.state.persistence.latest_clone_usec.to_string(),
        ),
        ("total_forks", "0".into()),
        ("migrate_cached_sockets", "0".into()),
        ("slave_expires_tracked_keys", "0".into()),
        ("active_defrag_hits", "0".into()),
        ("active_defrag_misses", "0".into()),
        ("active_defrag_key_hits", "0".into()),
        ("active_defrag_key_misses", "0".into()),
        ("total_active_defrag_time", "0".into()),
        ("current_active_defrag_time", "0".into()),
        ("tracking_total_keys", "0".into()),
        ("tracking_total_items", "0".into()),
        ("tracking_total_prefixes", "0".into()),
        ("unexpected_error_replies", "0".into()),
        ("total_error_replies", s.total_error_replies.to_string()),
        ("dump_payload_sanitizations", "0".into()),
        ("total_reads_processed", load(&net.reads_processed)),
        ("total_writes_processed", load(&net.writes_processed)),
        ("io_threaded_reads_processed", "0".into()),
        ("io_threaded_writes_processed", "0".into()),
        ("reply_buffer_shrinks", "0".into()),
        ("reply_buffer_expands", "0".into()),
        // forkless's own (crate::busypoll).
        ("busy_poll_periods", crate::busypoll::periods().to_string()),
    ])
}

/// Linux reports CPU time in clock ticks of 1/100 s on every supported platform.
const TICKS_PER_SEC: f64 = 100.0;

/// (user, system, children user, children system) seconds from a stat file.
fn cpu_times(path: &str) -> [f64; 4] {
    let text = read_proc(path);
    // Fields after the parenthesised command name start at field 3 (state).
    let rest = text.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick =
        |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / TICKS_PER_SEC;
    [tick(11), tick(12), tick(13), tick(14)]
}

fn cpu() -> Fields {
    let [user, sys, cuser, csys] = cpu_times("/proc/self/stat");
    let main = format!("/proc/self/task/{}/stat", std::process::id());
    let [muser, msys, _, _] = cpu_times(&main);
    let f = |v: f64| format!("{v:.6}");
    fields(&[
        ("used_cpu_sys", f(sys)),
        ("used_cpu_user", f(user)),
        ("used_cpu_sys_children", f(csys)),
        ("used_cpu_user_children", f(cuser)),
        ("used_cpu_sys_main_thread", f(msys)),
        ("used_cpu_user_main_thread", f(muser)),
    ])
}

/// `cmdstat_<name>` lines, by name. Container commands (CONFIG, CLIENT, ...)
/// are counted as a whole, not per subcommand as Redis does.
fn commandstats(ctx: &Ctx<'_>) -> Fields {
    let mut names: Vec<_> = ctx.state.stats.commands.iter().collect();
    names.sort_by_key(|(name, _)| name.0);
    names
        .into_iter()
        .map(|(name, c)| {
            let per_call = if c.calls > 0 {
                c.usec as f64 / c.calls as f64
            } else {
                0.0
            };
            (
                format!("cmdstat_{}", name.0),
                format!(
                    "calls={},usec={},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}",
                    c.calls, c.usec, c.rejected_calls, c.failed_calls
                ),
            )
        })
        .collect()
}

fn keyspace(ctx: &Ctx<'_>) -> Fields {
    ctx.state
        .keyspace
        .dbs()
        .iter()
        .enumerate()
        .filter(|(_, db)| !db.is_empty())
        .map(|(i, db)| {
            (
                format!("db{i}"),
                format!("keys={},expires={},avg_ttl=0", db.len(), db.volatile_len()),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_like_redis() {
        assert_eq!(human_bytes(200), "200B");
        assert_eq!(human_bytes(988848), "965.67K");
        assert_eq!(human_bytes(6676480), "6.37M");
        assert_eq!(human_bytes(25276514304), "23.54G");
    }

    #[test]
    fn sections_are_canonical() {
        let b = |v: &[&str]| -> Vec<Bytes> {
            v.iter()
                .map(|s| Bytes::copy_from_slice(s.as_bytes()))
                .collect()
        };
        assert_eq!(requested_sections(&[]), DEFAULT_SECTIONS);
        assert_eq!(requested_sections(&b(&["KEYSPACE"])), vec!["keyspace"]);
        assert!(requested_sections(&b(&["nosuch"])).is_empty());
        assert_eq!(requested_sections(&b(&["everything"])), ALL_SECTIONS);
    }
}
