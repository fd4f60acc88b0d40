//! Who may do what: credentials and sessions, the gate a request head goes
//! through, the Docker API route table, the body policy, logins and rpcd.

pub mod auth;
pub mod gate;
pub mod login;
pub mod policy;
pub mod route;
pub mod rpcd;
