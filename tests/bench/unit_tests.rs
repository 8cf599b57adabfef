//! Runs the unit tests of the benchmark's pure modules (the bench target itself has no test harness).
#![allow(dead_code)]

#[path = "cases.rs"]
mod cases;
#[path = "report.rs"]
mod report;
#[path = "table.rs"]
mod table;
#[path = "verify.rs"]
mod verify;
