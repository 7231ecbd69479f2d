//! `nat-core`: the masquerading engine. Pure library: no I/O, no clock reads.
