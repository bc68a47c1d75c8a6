//! Who this daemon is: host, boot, process id and the process's start time. Leases on work
//! (an outbox mail being sent, a shared-mailbox job being done) carry it, so a restarted daemon
//! can prove its predecessor dead and take its work back at once, instead of waiting for the
//! lease to run out, while live daemons elsewhere keep theirs.

/// This process's identity, `host/boot/pid/start`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub host: String,
    boot: String,
    pid: u32,
    /// The process's start time in clock ticks since boot (`/proc/PID/stat`, field 22): a pid
    /// reused by another process has another.
    start: u64,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Field 22 of `/proc/PID/stat` (after the command name, which may hold spaces).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

impl Instance {
    /// This process.
    pub fn current() -> Instance {
        let pid = std::process::id();
        Instance {
            host: read("/proc/sys/kernel/hostname"),
            boot: read("/proc/sys/kernel/random/boot_id")
                .chars()
                .take(8)
                .collect(),
            pid,
            start: start_time(pid).unwrap_or(0),
        }
    }

    /// The identity as stored on leases.
    pub fn id(&self) -> String {
        format!("{}/{}/{}/{}", self.host, self.boot, self.pid, self.start)
    }

    /// Whether the process that wrote `id` is certainly gone: it ran on this host, and either
    /// before the last boot or as a process that no longer exists (or whose pid now belongs to
    /// another). Leases of other hosts are never judged here (they run out, or their daemon's
    /// heartbeat does).
    pub fn proves_dead(&self, id: &str) -> bool {
        let mut parts = id.rsplitn(4, '/');
        let (Some(start), Some(pid), Some(boot), Some(host)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        if host != self.host || id == self.id() {
            return false;
        }
        if boot != self.boot {
            return true;
        }
        let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
            return false;
        };
        start_time(pid) != Some(start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gone_process_on_this_host_is_proved_dead_and_live_or_foreign_ones_are_not() {
        let me = Instance::current();
        assert!(!me.proves_dead(&me.id()), "myself");
        let boot = me.boot.clone();
        // pid 1 is alive, but not with this start time.
        assert!(me.proves_dead(&format!("{}/{boot}/1/1", me.host)));
        assert!(
            me.proves_dead(&format!("{}/{boot}/4194303/5", me.host)),
            "no such pid"
        );
        assert!(
            me.proves_dead(&format!("{}/00000000/{}/{}", me.host, me.pid, me.start)),
            "before the last boot"
        );
        assert!(
            !me.proves_dead(&format!("other-host/{boot}/4194303/5")),
            "other hosts are not judged here"
        );
        assert!(!me.proves_dead("garbage"));
        let init_start = start_time(1).expect("pid 1");
        assert!(
            !me.proves_dead(&format!("{}/{boot}/1/{init_start}", me.host)),
            "pid 1 lives"
        );
    }
}
