//! Ending a console's exec after its browser is gone.
//!
//! dockerd does not end an exec when its attach connection closes: with a
//! TTY the shell keeps its terminal, and without one a program that does not
//! read stdin never notices. Nor has its API a way to signal an exec. So the
//! end of a console is a task of its own that outlives the browser: it asks
//! dockerd about the exec until the process is gone, with a bounded number of
//! inspections and a deadline. It waits for a start still on its way, sends
//! SIGHUP (what a closed terminal window sends) and, after a grace period,
//! SIGKILL for a process that ignores the hang-up.
//!
//! The pid comes from dockerd and is not trusted bare. A signal is only sent
//! when dockerd is reached over a unix socket and runs in our pid namespace
//! (so its pids are ours), and when the pid, once held as a pidfd, names a
//! process in the exec's container (its cgroup path holds the container ID)
//! that started after the console asked dockerd to start the exec. The pidfd
//! must still refer to a live process after those checks, so the pid named
//! that process while they ran; and the signal goes through the pidfd, so a
//! process that later reuses the pid cannot receive it. Where any of this
//! cannot be checked, nothing is signalled and the log says so.

use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use crate::console::Call;
use crate::net::socket::{Side, Stream};
use crate::stats::Held;
use crate::sys::process;

/// How long a hung-up process gets before SIGKILL.
const HANGUP_GRACE: Duration = Duration::from_secs(3);
/// How long ending one exec may take, and how often dockerd is asked.
const REAP_DEADLINE: Duration = Duration::from_secs(30);
const MAX_INSPECTS: u32 = 100;
/// The pause between two inspections doubles from the first to the longest.
const FIRST_PAUSE: Duration = Duration::from_millis(20);
const LONGEST_PAUSE: Duration = Duration::from_millis(500);
/// Clock ticks by which a process's start may seem to precede the moment
/// we recorded before asking for it (both are rounded down).
const START_SLACK_TICKS: u64 = 2;

/// What dockerd says about an exec.
#[derive(Debug, PartialEq, Eq)]
enum ExecState {
    /// Removed, with its container: so is its process.
    Gone,
    Ended,
    /// Its start was sent but has not happened yet.
    NotStarted,
    Running {
        pid: libc::pid_t,
        container: String,
    },
    /// An error reply, which says nothing about the process: ask again.
    Unknown,
}

fn exec_state(status: u16, body: &[u8]) -> ExecState {
    match status {
        404 => return ExecState::Gone,
        200 => {}
        _ => return ExecState::Unknown,
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return ExecState::Unknown;
    };
    let running = v.get("Running").and_then(|r| r.as_bool()).unwrap_or(false);
    let pid = v
        .get("Pid")
        .and_then(|p| p.as_i64())
        .and_then(|p| libc::pid_t::try_from(p).ok())
        .unwrap_or(0);
    let container = v.get("ContainerID").and_then(|c| c.as_str()).unwrap_or("");
    let exit_code = v.get("ExitCode").is_some_and(|c| !c.is_null());
    match (running, pid > 0) {
        (true, true) => ExecState::Running {
            pid,
            container: container.to_string(),
        },
        (true, false) => ExecState::NotStarted,
        (false, _) if exit_code => ExecState::Ended,
        // Pid is set once the process exists; without an exit code it ended
        // before dockerd recorded one, or was never started.
        (false, true) => ExecState::Ended,
        (false, false) => ExecState::NotStarted,
    }
}

/// The clock-tick count since boot, the unit of a process's start time in
/// `/proc/PID/stat`.
pub fn boot_ticks() -> Option<u64> {
    let uptime = fs::read_to_string("/proc/uptime").ok()?;
    uptime_ticks(uptime.split_whitespace().next()?, ticks_per_second())
}

/// `/proc/uptime`'s seconds (`12345.67`) in clock ticks, exactly, without
/// pulling float parsing into the binary.
fn uptime_ticks(seconds: &str, per_second: u64) -> Option<u64> {
    let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit()) && s.len() <= 9;
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !digits(fraction) {
        return None;
    }
    let scale = 10u64.pow(fraction.len() as u32);
    let fraction = if fraction.is_empty() {
        0
    } else {
        fraction.parse::<u64>().ok()?
    };
    whole
        .parse::<u64>()
        .ok()?
        .checked_mul(per_second)?
        .checked_add(fraction * per_second / scale)
}

fn ticks_per_second() -> u64 {
    process::clock_ticks_per_second().unwrap_or(100)
}

/// Field 22 of `/proc/PID/stat`, counted after the command name, which may
/// itself hold spaces and parentheses.
fn start_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `/proc/PID/cgroup` puts the process in the container: every
/// cgroup driver names the container's directory after its full ID.
fn in_container_cgroup(cgroup: &str, container: &str) -> bool {
    let plausible = container.len() == 64 && container.bytes().all(|b| b.is_ascii_hexdigit());
    plausible
        && cgroup
            .lines()
            .filter_map(|l| l.splitn(3, ':').nth(2))
            .any(|path| path.contains(container))
}

/// Whether the process that listens on dockerd's unix socket runs in our
/// pid namespace, so that the pids dockerd reports are ours.
fn in_our_pid_namespace(stream: &Stream) -> bool {
    let namespace = |pid: &str| {
        fs::metadata(format!("/proc/{pid}/ns/pid"))
            .ok()
            .map(|m| (m.dev(), m.ino()))
    };
    match stream.peer_pid() {
        Ok(pid) if pid > 0 => namespace("self").is_some_and(|ours| namespace(&pid.to_string()) == Some(ours)),
        _ => false,
    }
}

enum PinError {
    /// There is no such process (any more).
    Gone,
    /// A process that is not verifiably the exec's.
    Foreign(&'static str),
}

/// An exec's process held by a pidfd: signals reach it and nothing else.
struct Pinned(OwnedFd);

impl Pinned {
    fn pin(pid: libc::pid_t, container: &str, started_after: Option<u64>) -> Result<Pinned, PinError> {
        let pinned = Pinned(process::pidfd_open(pid).map_err(|e| match e.raw_os_error() {
            Some(libc::ESRCH) => PinError::Gone,
            _ => PinError::Foreign("cannot be held as a pidfd (Linux 5.3 or later is needed)"),
        })?);
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|_| PinError::Gone)?;
        let cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup")).map_err(|_| PinError::Gone)?;
        if !pinned.alive() {
            return Err(PinError::Gone);
        }
        let (Some(start), Some(started_after)) = (start_ticks(&stat), started_after) else {
            return Err(PinError::Foreign("has a start time that cannot be checked"));
        };
        if start + START_SLACK_TICKS < started_after {
            return Err(PinError::Foreign("started before the console did"));
        }
        if !in_container_cgroup(&cgroup, container) {
            return Err(PinError::Foreign("is not in the exec's container"));
        }
        Ok(pinned)
    }

    fn signal(&self, signal: libc::c_int) -> io::Result<()> {
        process::pidfd_send_signal(self.0.as_fd(), signal)
    }

    /// Not yet reaped, so its pid is still its own.
    fn alive(&self) -> bool {
        self.signal(0).is_ok()
    }
}

/// The end of one console's exec, kept by its connection until done. While
/// it lives it counts in `consoles_ending`.
pub struct Reaper {
    exec_id: String,
    /// Clock ticks since boot when the exec's start was about to be sent:
    /// its process started later.
    started_after: Option<u64>,
    /// dockerd is on a unix socket; whether it is in our pid namespace is
    /// learnt from the first inspection's connection.
    local: bool,
    pids_are_ours: Option<bool>,
    process: Option<Pinned>,
    hung_up_at: Option<Instant>,
    killed: bool,
    call: Option<(Side, Call)>,
    inspections: u32,
    next_inspection: Instant,
    give_up_at: Instant,
    _ending: Held,
}

impl Reaper {
    pub fn new(
        exec_id: String,
        started_after: Option<u64>,
        local: bool,
        now: Instant,
        ending: Held,
    ) -> Reaper {
        Reaper {
            exec_id,
            started_after,
            local,
            pids_are_ours: None,
            process: None,
            hung_up_at: None,
            killed: false,
            call: None,
            inspections: 0,
            next_inspection: now,
            give_up_at: now + REAP_DEADLINE,
            _ending: ending,
        }
    }

    pub fn side(&mut self) -> Option<&mut Side> {
        self.call.as_mut().map(|(side, _)| side)
    }

    /// When `drive` should run again without an event.
    pub fn deadline(&self) -> Instant {
        match self.call {
            Some(_) => self.give_up_at,
            None => self.next_inspection.min(self.give_up_at),
        }
    }

    /// Makes what progress it can; `true` once there is nothing left to do.
    pub fn drive(
        &mut self,
        now: Instant,
        scratch: &mut [u8],
        connect: &mut dyn FnMut() -> io::Result<Side>,
    ) -> bool {
        loop {
            if let Some((side, call)) = self.call.as_mut() {
                match call.poll(side, scratch) {
                    Ok(None) if now < self.give_up_at => return false,
                    Ok(None) => {}
                    Ok(Some(reply)) => {
                        if self.pids_are_ours.is_none() {
                            self.pids_are_ours = Some(self.local && in_our_pid_namespace(&side.stream));
                        }
                        self.call = None;
                        if self.settle(exec_state(reply.status, &reply.body), now) {
                            return true;
                        }
                        continue;
                    }
                    Err(why) => {
                        log::debug!("exec {}: inspection failed: {why}", self.exec_id);
                        self.call = None;
                        self.pause(now);
                    }
                }
            }
            if now >= self.give_up_at || self.inspections >= MAX_INSPECTS {
                log::warn!(
                    "exec {} may still be running: not confirmed ended after {} inspections",
                    self.exec_id,
                    self.inspections
                );
                return true;
            }
            if now < self.next_inspection {
                return false;
            }
            match connect() {
                Ok(side) => {
                    self.inspections += 1;
                    let call = Call::new("GET", &format!("/exec/{}/json", self.exec_id), "", "");
                    self.call = Some((side, call));
                }
                Err(e) => {
                    log::debug!("exec {}: cannot connect to inspect it: {e}", self.exec_id);
                    self.pause(now);
                    return false;
                }
            }
        }
    }

    /// Acts on one inspection; `true` when the process is gone or cannot
    /// be ended from here.
    fn settle(&mut self, state: ExecState, now: Instant) -> bool {
        let (pid, container) = match state {
            ExecState::Gone | ExecState::Ended => return true,
            ExecState::NotStarted | ExecState::Unknown => {
                self.pause(now);
                return false;
            }
            ExecState::Running { pid, container } => (pid, container),
        };
        if self.pids_are_ours != Some(true) {
            log::warn!(
                "exec {} still runs and cannot be ended: dockerd is not local or not in our pid namespace",
                self.exec_id
            );
            return true;
        }
        let process = match self.process.take() {
            Some(p) => p,
            None => match Pinned::pin(pid, &container, self.started_after) {
                Ok(p) => p,
                Err(PinError::Gone) => return true,
                Err(PinError::Foreign(why)) => {
                    log::warn!("exec {}: pid {pid} {why}; not signalling it", self.exec_id);
                    return true;
                }
            },
        };
        let signal = match self.hung_up_at {
            None => Some(libc::SIGHUP),
            Some(at) if !self.killed && now >= at + HANGUP_GRACE => Some(libc::SIGKILL),
            Some(_) => None,
        };
        let sent = match signal {
            Some(s) => process.signal(s).is_ok(),
            None => process.alive(),
        };
        if !sent {
            return true;
        }
        match signal {
            Some(libc::SIGHUP) => {
                log::info!("exec {}: browser gone, hanging up pid {pid}", self.exec_id);
                self.hung_up_at = Some(now);
            }
            Some(_) => {
                log::warn!("exec {}: pid {pid} ignored the hang-up; killed", self.exec_id);
                self.killed = true;
            }
            None => {}
        }
        self.process = Some(process);
        self.pause(now);
        false
    }

    fn pause(&mut self, now: Instant) {
        let doublings = self.inspections.min(8);
        let mut next = now + (FIRST_PAUSE * (1 << doublings)).min(LONGEST_PAUSE);
        if let (Some(at), false) = (self.hung_up_at, self.killed) {
            next = next.min(at + HANGUP_GRACE);
        }
        self.next_inspection = next;
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    const ID: &str = "8cd14b4680952dfce8ecbc8ebc51b5798ad8fee64d8ceb88feb72d785063b715";

    #[test]
    fn inspect_replies() {
        let running = format!(r#"{{"Running":true,"Pid":4242,"ExitCode":null,"ContainerID":"{ID}"}}"#);
        assert_eq!(
            exec_state(200, running.as_bytes()),
            ExecState::Running {
                pid: 4242,
                container: ID.into()
            }
        );
        let not_started = br#"{"Running":false,"Pid":0,"ExitCode":null}"#;
        assert_eq!(exec_state(200, not_started), ExecState::NotStarted);
        assert_eq!(
            exec_state(200, br#"{"Running":false,"Pid":7,"ExitCode":0}"#),
            ExecState::Ended
        );
        assert_eq!(
            exec_state(200, br#"{"Running":false,"Pid":7,"ExitCode":null}"#),
            ExecState::Ended
        );
        assert_eq!(
            exec_state(200, br#"{"Running":false,"Pid":0,"ExitCode":126}"#),
            ExecState::Ended
        );
        assert_eq!(exec_state(404, b"{}"), ExecState::Gone);
        assert_eq!(exec_state(500, running.as_bytes()), ExecState::Unknown);
        assert_eq!(exec_state(200, b"not json"), ExecState::Unknown);
        assert_eq!(
            exec_state(200, br#"{"Running":true,"Pid":99999999999}"#),
            ExecState::NotStarted
        );
    }

    #[test]
    fn start_time_from_proc_stat() {
        let stat =
            "1234 (a) b) c) S 1 1234 1234 34816 1234 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 100";
        assert_eq!(start_ticks(stat), Some(987654));
        assert_eq!(start_ticks("1 (x) S 0"), None);
        assert_eq!(start_ticks("garbage"), None);
        assert_eq!(uptime_ticks("12345.67", 100), Some(1_234_567));
        assert_eq!(uptime_ticks("2.5", 100), Some(250));
        assert_eq!(uptime_ticks("7", 250), Some(1750));
        assert_eq!(uptime_ticks("1.999", 100), Some(199));
        for bad in ["", ".5", "1.x", "-1.00", "1.2.3"] {
            assert_eq!(uptime_ticks(bad, 100), None, "{bad}");
        }
        let own = fs::read_to_string("/proc/self/stat").unwrap();
        let now = boot_ticks().unwrap();
        assert!(start_ticks(&own).unwrap() <= now + START_SLACK_TICKS);
    }

    #[test]
    fn cgroup_names_the_container() {
        let v1 = format!("12:pids:/docker/{ID}\n11:memory:/docker/{ID}\n0::/\n");
        assert!(in_container_cgroup(&v1, ID));
        let systemd = format!("0::/system.slice/docker-{ID}.scope\n");
        assert!(in_container_cgroup(&systemd, ID));
        assert!(!in_container_cgroup("0::/user.slice/session-2.scope\n", ID));
        // an ID too short to be specific matches nothing
        assert!(!in_container_cgroup(&v1, &ID[..12]));
        assert!(!in_container_cgroup("0::/\n", ""));
    }

    #[test]
    fn our_own_process_is_not_an_exec() {
        let me = libc::pid_t::try_from(std::process::id()).unwrap();
        // (a console "started" long after us)
        let later = boot_ticks().map(|t| t + 100 * ticks_per_second());
        match Pinned::pin(me, ID, later) {
            Err(PinError::Foreign(why)) => assert_eq!(why, "started before the console did"),
            _ => panic!("our own process passed as the exec's"),
        }
        match Pinned::pin(me, ID, Some(0)) {
            Err(PinError::Foreign(why)) => assert_eq!(why, "is not in the exec's container"),
            _ => panic!("our own process passed as the exec's"),
        }
    }

    #[test]
    fn a_pinned_child_is_signalled_through_its_pidfd() {
        let mut child = std::process::Command::new("sleep").arg("60").spawn().unwrap();
        let pid = libc::pid_t::try_from(child.id()).unwrap();
        // (a sleep outside any container cannot pass `pin`: held directly)
        let pinned = Pinned(process::pidfd_open(pid).unwrap());
        assert!(pinned.alive());
        pinned.signal(libc::SIGHUP).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGHUP));
        // reaped: the pidfd refuses, whoever gets the pid next
        assert!(!pinned.alive());
        assert!(pinned.signal(libc::SIGKILL).is_err());
    }

    #[test]
    fn pauses_grow_and_meet_the_grace_period() {
        let now = Instant::now();
        let mut r = Reaper::new(
            ID.into(),
            Some(0),
            true,
            now,
            crate::stats::Gauge::default().hold(),
        );
        r.pause(now);
        assert_eq!(r.deadline(), now + FIRST_PAUSE);
        r.inspections = 20;
        r.pause(now);
        assert_eq!(r.deadline(), now + LONGEST_PAUSE);
        r.hung_up_at = Some(now - HANGUP_GRACE + Duration::from_millis(5));
        r.pause(now);
        assert_eq!(r.deadline(), now + Duration::from_millis(5));
    }
}
