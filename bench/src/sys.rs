//! Process figures: this process's CPU time (getrusage) and another process's RSS and CPU time
//! (`/proc/<pid>/status`, `/proc/<pid>/stat`).

use anyhow::{anyhow, Context as _, Result};
use nix::sys::resource::{getrusage, UsageWho};
use nix::unistd::{sysconf, SysconfVar};
use std::time::{Duration, Instant};

/// User + system CPU time of this process.
pub fn self_cpu() -> Duration {
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(u) => tv(u.user_time()) + tv(u.system_time()),
        Err(_) => Duration::ZERO,
    }
}

fn tv(t: nix::sys::time::TimeVal) -> Duration {
    let secs = u64::try_from(t.tv_sec()).unwrap_or(0);
    let micros = u64::try_from(t.tv_usec()).unwrap_or(0);
    Duration::from_secs(secs) + Duration::from_micros(micros)
}

/// VmRSS of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("no VmRSS in /proc/{pid}/status"))
}

/// VmRSS of this process in KiB (0 if unreadable).
pub fn self_rss_kib() -> u64 {
    rss_kib(std::process::id()).unwrap_or(0)
}

/// User and system CPU time of `pid`, apart (`/proc/<pid>/stat` fields 14 and 15,
/// clock-tick resolution).
pub fn proc_cpu_split(pid: u32) -> Result<(Duration, Duration)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("read /proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = s
        .rfind(')')
        .map(|i| &s[i + 1..])
        .ok_or_else(|| anyhow!("malformed /proc/{pid}/stat"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<u64> {
        f.get(i)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow!("malformed /proc/{pid}/stat"))
    };
    // `rest` starts at field 3 (state), so field n is at index n - 3.
    let (user, system) = (ticks(14 - 3)?, ticks(15 - 3)?);
    let hz = sysconf(SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|v| u64::try_from(v).ok())
        .filter(|&v| v > 0)
        .unwrap_or(100) as f64;
    Ok((
        Duration::from_secs_f64(user as f64 / hz),
        Duration::from_secs_f64(system as f64 / hz),
    ))
}

/// CPU use between two points, as a percentage of one core.
#[derive(Debug, Clone, Copy)]
pub struct CpuMeter {
    wall: Instant,
    own: Duration,
    /// The node's pid and its (user, system) time at the start.
    node: Option<(u32, (Duration, Duration))>,
}

/// What a [`CpuMeter`] read at its stop.
#[derive(Debug, Clone, Copy)]
pub struct CpuUse {
    /// This process, % of one core.
    pub own_pct: f64,
    /// The node, % of one core.
    pub node_pct: Option<f64>,
    /// The node's user and system time since the start.
    pub node_times: Option<(Duration, Duration)>,
}

impl CpuMeter {
    /// Starts measuring this process and, if given, the node's process.
    pub fn start(node_pid: Option<u32>) -> CpuMeter {
        CpuMeter {
            wall: Instant::now(),
            own: self_cpu(),
            node: node_pid.and_then(|p| proc_cpu_split(p).ok().map(|c| (p, c))),
        }
    }

    /// (own %, node %) of one core since `start`.
    pub fn stop(&self) -> (f64, Option<f64>) {
        let u = self.stop_use();
        (u.own_pct, u.node_pct)
    }

    /// Everything measured since `start`, the node read once.
    pub fn stop_use(&self) -> CpuUse {
        let wall = self.wall.elapsed().as_secs_f64().max(1e-9);
        let own_pct = (self_cpu().saturating_sub(self.own)).as_secs_f64() / wall * 100.0;
        let node_times = self.node.and_then(|(p, (u0, s0))| {
            proc_cpu_split(p)
                .ok()
                .map(|(u1, s1)| (u1.saturating_sub(u0), s1.saturating_sub(s0)))
        });
        CpuUse {
            own_pct,
            node_pct: node_times.map(|(u, s)| (u + s).as_secs_f64() / wall * 100.0),
            node_times,
        }
    }
}

/// Number of CPUs this process may run on (respects `taskset`).
pub fn allowed_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_figures() {
        assert!(self_rss_kib() > 0);
        let pid = std::process::id();
        assert!(proc_cpu_split(pid).is_ok());
        let m = CpuMeter::start(Some(pid));
        let mut x = 0u64;
        for i in 0..1_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        assert!(x > 0);
        let (own, node) = m.stop();
        assert!(own >= 0.0);
        assert!(node.is_some());
    }
}
