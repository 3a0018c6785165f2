//! How many bytes a socket's kernel send queue holds that have not been sent yet
//! (`SIOCOUTQNSD`). The link writer ([`super::outbox`]) waits for this to fall under
//! `TCP_NOTSENT_LOWAT` before it writes more, so what waits for a peer stays in the link's own
//! queue, where a heartbeat can go first, rather than in the kernel, where nothing can overtake.
//!
//! Owns this one query. It is the second `unsafe` in the workspace (beside
//! `memory::tune_allocator`): the ioctl has no safe wrapper in `libc`, `nix` or `socket2`.

use std::os::fd::AsRawFd;

/// `SIOCOUTQNSD` from `linux/sockios.h` (the same on every Linux architecture).
#[cfg(target_os = "linux")]
const SIOCOUTQNSD: libc::c_ulong = 0x894B;

/// Unsent bytes in `socket`'s send queue, if the system can tell.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn bytes(socket: &impl AsRawFd) -> Option<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCOUTQNSD writes one int through the pointer, which points at `n`, alive for
    // the call; the descriptor is borrowed from a live socket.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), SIOCOUTQNSD as _, &mut n) };
    (rc == 0).then(|| usize::try_from(n).unwrap_or(0))
}

/// Unsent bytes in `socket`'s send queue, if the system can tell.
#[cfg(not(target_os = "linux"))]
pub fn bytes(_socket: &impl AsRawFd) -> Option<usize> {
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_fresh_socket_has_nothing_unsent() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        assert_eq!(super::bytes(&s), Some(0));
    }
}
