//! Moving asset bytes: one verified copy at a time ([`copy`]).

pub mod copy;
