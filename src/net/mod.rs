//! The network edge: listening sockets, the sockets a connection holds, the
//! way to dockerd, and who gets a connection slot.

pub mod head_reader;
pub mod idle;
pub mod intake;
pub mod listener;
pub mod outbox;
pub mod socket;
pub mod upstream;
