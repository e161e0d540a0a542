//! Pure: what the answer to a delivery is once its run has ended: done, delivered again, or parked for a person.
//!
//! The handlers only perform what [`next`] decides. `Done` answers 2xx with the run's outputs; `Redeliver`
//! answers a queue delivery non-2xx (the host delivers the message again) and a manual run either hands over to
//! the queue or answers 503; `Park` answers 2xx with the incomplete document, a message on `refresh-attention`
//! and the job on `refresh-jobs-poison`.

use crate::inventory::Inventory;
use crate::report::{Report, RunError};

/// How a run ended, as far as its answer is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunEnd {
    /// Every target (or, for an inventory, every scope and vault) was handled.
    pub complete: bool,
    /// What stopped it may go away by itself: there are errors, and every one is transient (an outage,
    /// throttling, the run budget), none a refusal that a retry would meet again.
    pub retry_may_help: bool,
}

impl RunEnd {
    /// From whether the run completed and the errors it met: the one rule for "a retry may help".
    pub fn new(complete: bool, errors: &[RunError]) -> Self {
        RunEnd {
            complete,
            retry_may_help: !complete && !errors.is_empty() && errors.iter().all(|e| e.transient),
        }
    }

    pub fn of_report(report: &Report) -> Self {
        RunEnd::new(report.complete, &report.errors)
    }

    pub fn of_inventory(inventory: &Inventory) -> Self {
        RunEnd::new(inventory.complete, &inventory.errors)
    }
}

/// What the handler knows about the delivery it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// A message of the `refresh-jobs` queue.
    Queued {
        /// Which delivery of the message this is, from 1 (the host's `DequeueCount`).
        count: u64,
        /// The most deliveries the host makes (host.json `maxDequeueCount`): the last one cannot ask for another.
        max: u64,
        /// Another instance held the rotation's claim for as long as this delivery waited, so it did nothing.
        held_elsewhere: bool,
    },
    /// A manual run over HTTP: its caller waits for the answer, and may try again.
    Http,
}

/// The answer to a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The run is over, complete or stopped by something a retry would meet again: answer with its document.
    Done,
    /// Trying again later may finish it: ask to be delivered again.
    Redeliver,
    /// Trying again may help but no delivery is left: keep the incomplete document, tell a person, park the job.
    Park,
}

/// Decides the answer to a delivery from how its run ended.
pub fn next(run: RunEnd, delivery: Delivery) -> Outcome {
    let retry_wanted = match delivery {
        // The holder may still finish or give up; this delivery did nothing, whatever its report says.
        Delivery::Queued {
            held_elsewhere: true,
            ..
        } => true,
        _ => run.retry_may_help,
    };
    match delivery {
        _ if !retry_wanted => Outcome::Done,
        Delivery::Http => Outcome::Redeliver,
        Delivery::Queued { count, max, .. } if count < max => Outcome::Redeliver,
        Delivery::Queued { .. } => Outcome::Park,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: u64 = 5;

    fn error(transient: bool) -> RunError {
        RunError {
            stage: "apply".into(),
            message: "x".into(),
            transient,
            subject: None,
        }
    }

    fn queued(count: u64) -> Delivery {
        Delivery::Queued {
            count,
            max: MAX,
            held_elsewhere: false,
        }
    }

    fn held_elsewhere(count: u64) -> Delivery {
        Delivery::Queued {
            count,
            max: MAX,
            held_elsewhere: true,
        }
    }

    #[test]
    fn the_answer_to_a_delivery_follows_the_table() {
        let complete = RunEnd::new(true, &[]);
        let transient = RunEnd::new(false, &[error(true), error(true)]);
        let refused = RunEnd::new(false, &[error(false)]);
        let mixed = RunEnd::new(false, &[error(true), error(false)]);
        let incomplete_without_errors = RunEnd::new(false, &[]);
        let table: &[(&str, RunEnd, Delivery, Outcome)] = &[
            ("a complete run is done", complete, queued(1), Outcome::Done),
            (
                "a complete run is done on its last delivery too",
                complete,
                queued(MAX),
                Outcome::Done,
            ),
            (
                "transient errors with deliveries left ask for a redelivery",
                transient,
                queued(1),
                Outcome::Redeliver,
            ),
            (
                "transient errors on the delivery before the last still ask for one",
                transient,
                queued(MAX - 1),
                Outcome::Redeliver,
            ),
            (
                "transient errors on the last delivery park the job",
                transient,
                queued(MAX),
                Outcome::Park,
            ),
            (
                "a delivery past the host's maximum parks the job",
                transient,
                queued(MAX + 3),
                Outcome::Park,
            ),
            (
                "a refusal is done at once: a retry would meet it again",
                refused,
                queued(1),
                Outcome::Done,
            ),
            (
                "a refusal among transient errors is done at once",
                mixed,
                queued(1),
                Outcome::Done,
            ),
            (
                "an incomplete run with no error to blame is done",
                incomplete_without_errors,
                queued(1),
                Outcome::Done,
            ),
            (
                "a claim held elsewhere asks for a redelivery",
                transient,
                held_elsewhere(1),
                Outcome::Redeliver,
            ),
            (
                "a claim held elsewhere asks for a redelivery whatever the report says",
                refused,
                held_elsewhere(2),
                Outcome::Redeliver,
            ),
            (
                "a claim held elsewhere on the last delivery parks the job",
                transient,
                held_elsewhere(MAX),
                Outcome::Park,
            ),
            (
                "a manual run that completed is done",
                complete,
                Delivery::Http,
                Outcome::Done,
            ),
            (
                "a manual run stopped by transient errors is delivered again",
                transient,
                Delivery::Http,
                Outcome::Redeliver,
            ),
            (
                "a manual run that Azure refused is done",
                refused,
                Delivery::Http,
                Outcome::Done,
            ),
        ];
        for (sentence, run, delivery, expected) in table {
            assert_eq!(next(*run, *delivery), *expected, "{sentence}");
        }
    }

    #[test]
    fn a_retry_may_help_only_when_every_error_is_transient() {
        assert!(RunEnd::new(false, &[error(true)]).retry_may_help);
        assert!(!RunEnd::new(false, &[error(true), error(false)]).retry_may_help);
        assert!(!RunEnd::new(false, &[]).retry_may_help);
        assert!(
            !RunEnd::new(true, &[error(true)]).retry_may_help,
            "a complete run needs no retry"
        );
    }
}
