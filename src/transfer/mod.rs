//! Moving asset bytes: one verified copy ([`copy`]), a job's pool of them
//! ([`pool`]), and the job's record of them in the state store ([`ledger`]).

pub mod copy;
pub mod ledger;
pub mod pool;
pub mod sniff;
