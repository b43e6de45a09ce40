//! Acknowledgements released in arrival order.
//!
//! MQTT brokers see a `PUBACK` as "this packet id is done"; rumqttd goes further and
//! disconnects a client that acks out of order. Consumers may ack in any order, so each
//! MQTT subscription holds its acks here and releases the longest acked prefix: an ack
//! reaches the broker once every earlier delivery of the same connection is acked too.

use std::collections::VecDeque;
use std::sync::Mutex;

/// Identifies one delivery of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket {
    session: u64,
    seq: u64,
}

impl Ticket {
    /// The connection the delivery came on.
    pub(crate) fn session(self) -> u64 {
        self.session
    }
}

/// The acks of one connection, waiting for their turn.
pub(crate) struct InOrderAcks<T> {
    state: Mutex<State<T>>,
}

struct State<T> {
    /// Bumped on every (re)connection: tickets of an older connection are void, as the
    /// broker redelivers what they stood for.
    session: u64,
    /// Sequence number of `waiting[0]`.
    first_seq: u64,
    waiting: VecDeque<(T, bool)>,
}

impl<T> Default for InOrderAcks<T> {
    fn default() -> Self {
        Self { state: Mutex::new(State { session: 0, first_seq: 0, waiting: VecDeque::new() }) }
    }
}

impl<T> InOrderAcks<T> {
    fn state(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current connection, as numbered in [`Ticket::session`].
    pub(crate) fn session(&self) -> u64 {
        self.state().session
    }

    /// Forgets every outstanding delivery: the connection was replaced.
    pub(crate) fn new_session(&self) {
        let mut s = self.state();
        s.session += 1;
        s.first_seq = 0;
        s.waiting.clear();
    }

    /// Records a delivery whose ack is `ack`, in arrival order.
    pub(crate) fn register(&self, ack: T) -> Ticket {
        let mut s = self.state();
        let seq = s.first_seq + s.waiting.len() as u64;
        s.waiting.push_back((ack, false));
        Ticket { session: s.session, seq }
    }

    /// Marks `ticket` acked and returns the acks now due, oldest first (none if an earlier
    /// delivery is still unacked, or the ticket belongs to a previous connection).
    pub(crate) fn ack(&self, ticket: Ticket) -> Vec<T> {
        let mut s = self.state();
        if ticket.session != s.session || ticket.seq < s.first_seq {
            return Vec::new();
        }
        let index = (ticket.seq - s.first_seq) as usize;
        match s.waiting.get_mut(index) {
            Some(entry) => entry.1 = true,
            None => return Vec::new(),
        }
        let mut due = Vec::new();
        while s.waiting.front().is_some_and(|(_, acked)| *acked) {
            let (ack, _) = s.waiting.pop_front().expect("front checked");
            s.first_seq += 1;
            due.push(ack);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_are_released_once_everything_before_them_is_acked() {
        let acks = InOrderAcks::default();
        let t: Vec<Ticket> = (1..=3).map(|i| acks.register(i)).collect();
        assert!(acks.ack(t[1]).is_empty());
        assert!(acks.ack(t[2]).is_empty());
        assert_eq!(acks.ack(t[0]), vec![1, 2, 3]);
        let t4 = acks.register(4);
        assert_eq!(acks.ack(t4), vec![4]);
    }

    #[test]
    fn tickets_of_a_previous_connection_release_nothing() {
        let acks = InOrderAcks::default();
        let old = acks.register(1);
        acks.new_session();
        let new = acks.register(7);
        assert!(acks.ack(old).is_empty());
        assert_eq!(acks.ack(new), vec![7]);
    }
}
