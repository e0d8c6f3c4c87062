//! `LDNOTE_TRACE_TIME=1`: per-step durations of one run on stderr (wall and this process's CPU),
//! to see where the time a wrapped link adds goes. Off by default: one environment lookup.
use std::sync::OnceLock;
use std::time::Instant;

use rustix::time::{clock_gettime, ClockId};

struct Clock {
    wall: Instant,
    cpu: u64,
}

/// The variable that turns the trace on (`1`).
const VAR: &str = "LDNOTE_TRACE_TIME";

static ON: OnceLock<bool> = OnceLock::new();
static LAST: std::sync::Mutex<Option<Clock>> = std::sync::Mutex::new(None);

fn cpu_ns(id: ClockId) -> u64 {
    let t = clock_gettime(id);
    u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(t.tv_nsec).unwrap_or(0)
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
    let now = Clock {
        wall: Instant::now(),
        cpu: cpu_ns(ClockId::ProcessCPUTime),
    };
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    match last.as_ref() {
        Some(l) => errln!(
            "ldnote: time: {what:<8} wall {:8.3} ms  cpu {:8.3} ms",
            now.wall.duration_since(l.wall).as_secs_f64() * 1e3,
            now.cpu.saturating_sub(l.cpu) as f64 / 1e6
        ),
        None => errln!(
            "ldnote: time: {what:<8} wall        - ms  cpu {:8.3} ms",
            now.cpu as f64 / 1e6
        ),
    }
    *last = Some(now);
}
