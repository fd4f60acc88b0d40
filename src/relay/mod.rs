//! Moving bytes: the flows that carry bodies and tunnels between sockets,
//! and the pooled pipes and buffers they move them through.

pub mod flow;
pub mod pool;
