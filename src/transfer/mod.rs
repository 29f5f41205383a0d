//! Moving asset bytes: one verified copy ([`copy`]) and a job's pool of them
//! ([`pool`]).

pub mod copy;
pub mod pool;
