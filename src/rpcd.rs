//! Asking the router's rpcd whether a LuCI session may use Docker, without
//! blocking the event loop: `ubus call session access` runs as a child
//! whose stdout is watched like any other socket.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::process::{Child, Command, Stdio};

use crate::auth::{parse_ubus_access, Rpcd};

/// Output beyond this is not an answer we want.
const MAX_OUTPUT: usize = 4096;

pub struct AccessCheck {
    child: Child,
    output: Vec<u8>,
    /// The ACL function asked about: `write` first, then `read`.
    pub function: &'static str,
}

impl AccessCheck {
    pub fn spawn(rpcd: &Rpcd, session: &str, function: &'static str) -> io::Result<AccessCheck> {
        let query = serde_json::json!({
            "ubus_rpc_session": session,
            "scope": "access-group",
            "object": rpcd.acl_object,
            "function": function,
        });
        let child = Command::new(&rpcd.ubus)
            .args(["call", "session", "access", &query.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let check = AccessCheck {
            child,
            output: Vec::new(),
            function,
        };
        let fd = check.fd().ok_or_else(|| io::Error::other("no stdout"))?;
        // SAFETY: fcntl on the child's stdout pipe, which we own.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
        Ok(check)
    }

    pub fn fd(&self) -> Option<RawFd> {
        self.child.stdout.as_ref().map(|s| s.as_raw_fd())
    }

    /// Reads what is there; `Some(access)` once ubus has finished.
    pub fn poll(&mut self) -> Option<bool> {
        let stdout = self.child.stdout.as_mut()?;
        let mut buf = [0u8; 512];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) => break,
                Ok(n) if self.output.len() + n <= MAX_OUTPUT => self.output.extend_from_slice(&buf[..n]),
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.reap();
        Some(parse_ubus_access(&self.output))
    }

    /// Ends the child; it has closed stdout, so it is exiting anyway.
    pub fn reap(&mut self) {
        self.child.stdout = None;
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
