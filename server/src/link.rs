//! Link manager: one state machine per configured connection, holders, redial, idle timer.
