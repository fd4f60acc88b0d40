//! Helper threads, started with `pthread_create` itself. std's spawn
//! machinery names its threads through musl's `pthread_setname_np`, which
//! formats a path with `snprintf` and so brings musl's whole printf (about
//! 15 KB on MIPS, with the rest of the spawn code) into a binary that never
//! prints with it. The threads here are detached, get std's default stack
//! (2 MiB) and are named the way musl names the calling thread (`prctl`).

use std::ffi::CStr;
use std::io;

/// What a thread runs.
type Main = Box<dyn FnOnce() + Send>;

const STACK_SIZE: usize = 2 << 20;

/// Starts a detached thread named `name` (up to 15 bytes are kept) running
/// `main`.
pub fn spawn(name: Option<&'static CStr>, main: impl FnOnce() + Send + 'static) -> io::Result<()> {
    let start: Box<(Option<&'static CStr>, Main)> = Box::new((name, Box::new(main)));
    let arg = Box::into_raw(start).cast::<libc::c_void>();
    // SAFETY: the attributes are initialised before use and destroyed after;
    // `arg` is a leaked box that `run` takes back exactly once, or that is
    // taken back here when no thread was started.
    let r = unsafe {
        let mut attr = std::mem::zeroed::<libc::pthread_attr_t>();
        let mut r = libc::pthread_attr_init(&mut attr);
        if r == 0 {
            r = libc::pthread_attr_setstacksize(&mut attr, STACK_SIZE);
            if r == 0 {
                r = libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
            }
            if r == 0 {
                let mut thread = std::mem::zeroed::<libc::pthread_t>();
                r = libc::pthread_create(&mut thread, &attr, run, arg);
            }
            libc::pthread_attr_destroy(&mut attr);
        }
        if r != 0 {
            drop(Box::from_raw(arg.cast::<(Option<&'static CStr>, Main)>()));
        }
        r
    };
    match r {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

extern "C" fn run(arg: *mut libc::c_void) -> *mut libc::c_void {
    // SAFETY: `arg` is the box `spawn` leaked for this thread alone.
    let start = unsafe { Box::from_raw(arg.cast::<(Option<&'static CStr>, Main)>()) };
    let (name, main) = *start;
    if let Some(name) = name {
        // SAFETY: PR_SET_NAME reads a NUL-terminated string, at most 16
        // bytes of it, and names the calling thread.
        unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
    }
    main();
    std::ptr::null_mut()
}
