//! `LDNOTE_TRACE_TIME=1`: per-step durations of one run on stderr (wall and this process's CPU),
//! and the page faults it took (`minflt`, from `/proc/self/stat`), to see where the time a wrapped
//! link adds goes. Off by default: one environment lookup. The trace's own work (reading
//! `/proc`, printing) is left out of the step that follows it: the clock restarts after it.
use std::sync::OnceLock;
use std::time::Instant;

use rustix::time::{clock_gettime, ClockId};

struct Clock {
    wall: Instant,
    cpu: u64,
    faults: u64,
}

/// The variable that turns the trace on (`1`).
const VAR: &str = "LDNOTE_TRACE_TIME";

static ON: OnceLock<bool> = OnceLock::new();
static LAST: std::sync::Mutex<Option<Clock>> = std::sync::Mutex::new(None);

fn cpu_ns(id: ClockId) -> u64 {
    let t = clock_gettime(id);
    u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(t.tv_nsec).unwrap_or(0)
}

/// Minor page faults of this process so far: field 10 of `/proc/self/stat`, counted after the
/// command name's closing parenthesis (the name itself may hold spaces). 0 when unreadable.
fn minor_faults() -> u64 {
    let Ok(stat) = std::fs::read("/proc/self/stat") else {
        return 0;
    };
    let Some(end) = stat.iter().rposition(|&b| b == b')') else {
        return 0;
    };
    // After ") ": state (3), ppid, pgrp, session, tty_nr, tpgid, flags, minflt (10).
    stat[end + 1..]
        .split(|&b| b == b' ')
        .filter(|f| !f.is_empty())
        .nth(7)
        .and_then(|f| std::str::from_utf8(f).ok()?.parse().ok())
        .unwrap_or(0)
}

fn on() -> bool {
    *ON.get_or_init(|| std::env::var_os(VAR).is_some_and(|v| v == "1"))
}

/// The end of step `what`: prints the wall and CPU time since the previous mark. The first mark
/// (at `main`) reports the CPU the process used before it: execve, the dynamic loader (for a
/// dynamically linked build) and the runtime's start.
pub fn mark(what: &str) {
    if !on() {
        return;
    }
    let wall = Instant::now();
    let cpu = cpu_ns(ClockId::ProcessCPUTime);
    let faults = minor_faults();
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    match last.as_ref() {
        Some(l) => errln!(
            "ldnote: time: {what:<8} wall {:8.3} ms  cpu {:8.3} ms  faults {:3}",
            wall.duration_since(l.wall).as_secs_f64() * 1e3,
            cpu.saturating_sub(l.cpu) as f64 / 1e6,
            faults.saturating_sub(l.faults)
        ),
        None => errln!(
            "ldnote: time: {what:<8} wall        - ms  cpu {:8.3} ms  faults {faults:3}",
            cpu as f64 / 1e6
        ),
    }
    // The next step starts after this one's trace: reading `/proc` and printing are not its.
    *last = Some(Clock {
        wall: Instant::now(),
        cpu: cpu_ns(ClockId::ProcessCPUTime),
        faults: minor_faults(),
    });
}
