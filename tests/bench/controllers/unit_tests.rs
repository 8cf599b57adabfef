//! Runs the unit tests of the controllers benchmark's pure modules (the bench target has no test harness).
#![allow(dead_code)]

#[path = "managers.rs"]
mod managers;
#[path = "objects.rs"]
mod objects;
#[path = "pods.rs"]
mod pods;
#[path = "../process.rs"]
mod process;
#[path = "report.rs"]
mod report;
#[path = "../table.rs"]
mod table;
