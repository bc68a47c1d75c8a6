//! A ticket's life after it is opened: transitions (`lifecycle`), the service promises as timers
//! (`sla`), how service time is counted (`calendar`), and reading survey answers (`survey`). Pure.

pub mod calendar;
pub mod lifecycle;
pub mod sla;
pub mod survey;
