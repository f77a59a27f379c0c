//! The hub: every authenticated socket's send queue and subscriptions, and
//! the fan-out of each polled batch to them.
//!
//! Centrifugo's rules: the hub's lock is held only to look at subscriptions
//! and to `try_send` into bounded queues, never while writing to a socket
//! (each socket has its own writer task draining its queue), and a socket
//! whose queue is full is closed with 1013 instead of being waited for.
//!
//! Ordering: the poller fans out batch after batch under the lock and moves
//! `position` (the outbox id delivered through) with each. A socket is either
//! live (it gets every batch past its `cursor`) or held while it catches up
//! from the database (after `resume`, or while a `subscribe` takes its
//! snapshot); it rejoins only when it has replayed exactly up to `position`,
//! checked under the same lock ([`Hub::try_join`]), so nothing falls in the
//! seam and nothing is sent twice.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};

use super::metrics::Metrics;
use super::protocol::{Channel, Facets, Filters};

/// One pushed event, serialized once for every socket that gets it.
#[derive(Debug)]
pub struct Event {
    /// The outbox id (the audit log's id on the audit channel).
    pub id: i64,
    pub channel: Channel,
    pub facets: Facets,
    /// Commit time, ms.
    pub created_at: i64,
    pub message: Arc<str>,
}

/// What a socket's writer task sends.
#[derive(Debug)]
pub enum Out {
    Shared(Arc<str>),
    Text(String),
    /// A WebSocket ping frame (the heartbeat).
    Ping,
}

/// A close frame: code and reason (at most 123 bytes on the wire).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Close {
    pub code: u16,
    pub reason: String,
}

pub mod code {
    pub const NORMAL: u16 = 1000;
    pub const SHUTDOWN: u16 = 1001;
    pub const TOO_BIG: u16 = 1009;
    pub const SLOW_CONSUMER: u16 = 1013;
    pub const UNAUTHENTICATED: u16 = 4401;
    pub const FORBIDDEN: u16 = 4403;
    /// Two heartbeats went unanswered.
    pub const PING_TIMEOUT: u16 = 4408;
}

impl Close {
    pub fn new(code: u16, reason: &str) -> Close {
        let mut reason = reason.to_string();
        while reason.len() > 123 {
            reason.pop();
        }
        Close { code, reason }
    }
}

/// A socket's close switch: the first close asked for wins, and the writer
/// task sends it.
pub struct Closer(watch::Sender<Option<Close>>);

impl Closer {
    pub fn new() -> (Arc<Closer>, watch::Receiver<Option<Close>>) {
        let (tx, rx) = watch::channel(None);
        (Arc::new(Closer(tx)), rx)
    }

    /// Ask for `close`; false when another close was asked for first.
    pub fn close(&self, close: Close) -> bool {
        self.0.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(close);
                true
            } else {
                false
            }
        })
    }
}

/// Why a message could not be queued.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The queue is full: the socket is not keeping up.
    Full,
    /// The writer is gone (the socket closed).
    Gone,
}

/// The queue policy: offer without waiting. A full queue is a slow consumer,
/// closed with 1013; the caller never blocks on one socket.
pub fn offer(tx: &mpsc::Sender<Out>, out: Out) -> Result<(), Refused> {
    tx.try_send(out).map_err(|e| match e {
        mpsc::error::TrySendError::Full(_) => Refused::Full,
        mpsc::error::TrySendError::Closed(_) => Refused::Gone,
    })
}

pub fn slow_consumer_close(capacity: usize) -> Close {
    Close::new(
        code::SLOW_CONSUMER,
        &format!(
            "slow consumer: more than {capacity} messages waiting; resume from your last event id"
        ),
    )
}

#[derive(Clone, Debug)]
pub struct Sub {
    pub filters: Filters,
    /// Events of the channel up to this id are not sent: the snapshot (or
    /// the resumed client) already has them.
    pub since: i64,
}

/// A socket's subscriptions, one slot per channel.
#[derive(Clone, Debug, Default)]
pub struct Subs([Option<Sub>; 6]);

impl Subs {
    pub fn get(&self, c: Channel) -> Option<&Sub> {
        self.0[c.index()].as_ref()
    }

    pub fn set(&mut self, c: Channel, sub: Option<Sub>) {
        self.0[c.index()] = sub;
    }

    pub fn count(&self) -> usize {
        self.0.iter().flatten().count()
    }

    pub fn channels(&self) -> Vec<Channel> {
        Channel::ALL
            .into_iter()
            .filter(|c| self.get(*c).is_some())
            .collect()
    }

    /// Whether this socket gets `event`.
    pub fn wants(&self, event: &Event) -> bool {
        self.get(event.channel)
            .is_some_and(|s| event.id > s.since && s.filters.admits(&event.facets))
    }
}

struct Client {
    tx: mpsc::Sender<Out>,
    closer: Arc<Closer>,
    subs: Subs,
    /// Outbox events up to here were offered (or were not wanted).
    cursor: i64,
    live: bool,
}

struct Inner {
    position: i64,
    audit_position: i64,
    clients: HashMap<u64, Client>,
    next_id: u64,
}

pub struct Hub {
    inner: Mutex<Inner>,
    metrics: Arc<Metrics>,
    capacity: usize,
}

/// What [`Hub::try_join`] decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Join {
    /// The socket is live again: the poller sends it everything after its cursor.
    Live,
    /// The poller moved on meanwhile: replay up to this id first, then try again.
    ReplayTo(i64),
    /// The socket was dropped (a slow consumer, or closed).
    Gone,
}

/// The seam rule: a socket that has replayed through `replayed_through`
/// joins the live stream only if that is where the poller is; otherwise it
/// replays the difference (never more, never less).
pub fn seam(replayed_through: i64, position: i64) -> Option<i64> {
    (replayed_through < position).then_some(position)
}

impl Hub {
    /// A hub whose poller starts after outbox id `position` and audit id
    /// `audit_position`; `capacity` is each socket's queue bound.
    pub fn new(position: i64, audit_position: i64, capacity: usize, metrics: Arc<Metrics>) -> Hub {
        metrics.outbox_position.store(position, Relaxed);
        Hub {
            inner: Mutex::new(Inner {
                position,
                audit_position,
                clients: HashMap::new(),
                next_id: 1,
            }),
            metrics,
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("hub lock")
    }

    pub fn positions(&self) -> (i64, i64) {
        let inner = self.lock();
        (inner.position, inner.audit_position)
    }

    pub fn subscriptions(&self) -> usize {
        self.lock().clients.values().map(|c| c.subs.count()).sum()
    }

    /// Wait (at most `grace`) until every subscribed socket's queue has room
    /// for `needed` more messages. A burst is then paced by the sockets that
    /// keep up, while one that cannot take a batch within `grace` is, at the
    /// next fan-out, a slow consumer: it can delay the others once, by
    /// `grace`, and never again.
    pub async fn wait_for_room(&self, needed: usize, grace: std::time::Duration) {
        let needed = needed.min(self.capacity);
        let deadline = tokio::time::Instant::now() + grace;
        while self.least_room() < needed && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }

    fn least_room(&self) -> usize {
        self.lock()
            .clients
            .values()
            .filter(|c| c.subs.count() > 0)
            .map(|c| c.tx.capacity())
            .min()
            .unwrap_or(usize::MAX)
    }

    /// Add a live socket with no subscriptions; its id.
    pub fn register(&self, tx: mpsc::Sender<Out>, closer: Arc<Closer>) -> u64 {
        let mut inner = self.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        let cursor = inner.position;
        inner.clients.insert(
            id,
            Client {
                tx,
                closer,
                subs: Subs::default(),
                cursor,
                live: true,
            },
        );
        id
    }

    pub fn unregister(&self, id: u64) {
        self.lock().clients.remove(&id);
    }

    /// Fan out a polled batch: outbox `events` (ids ascending, through
    /// `position`) to live sockets past their cursor, `audit` entries
    /// (through `audit_position`) to every audit subscriber.
    pub fn publish(
        &self,
        events: &[Arc<Event>],
        position: i64,
        audit: &[Arc<Event>],
        audit_position: i64,
    ) {
        let mut pushed = 0u64;
        let mut dropped = Vec::new();
        let mut inner = self.lock();
        inner.position = inner.position.max(position);
        inner.audit_position = inner.audit_position.max(audit_position);
        for (id, c) in inner.clients.iter_mut() {
            let mut outcome = Ok(());
            if c.live {
                for e in events.iter().filter(|e| e.id > c.cursor) {
                    if c.subs.wants(e) {
                        outcome = offer(&c.tx, Out::Shared(e.message.clone()));
                        if outcome.is_err() {
                            break;
                        }
                        pushed += 1;
                    }
                }
                c.cursor = c.cursor.max(position);
            }
            // Audit entries have ids of their own and no replay: held
            // sockets get them too, so holding never loses one.
            if outcome.is_ok() {
                for e in audit.iter().filter(|e| c.subs.wants(e)) {
                    outcome = offer(&c.tx, Out::Shared(e.message.clone()));
                    if outcome.is_err() {
                        break;
                    }
                    pushed += 1;
                }
            }
            if let Err(why) = outcome {
                dropped.push((*id, why));
            }
        }
        for (id, why) in dropped {
            if let Some(c) = inner.clients.remove(&id)
                && why == Refused::Full
            {
                c.closer.close(slow_consumer_close(self.capacity));
                Metrics::add(&self.metrics.slow_consumer_drops_total);
            }
        }
        drop(inner);
        self.metrics.events_pushed_total.fetch_add(pushed, Relaxed);
        self.metrics.outbox_position.store(position, Relaxed);
    }

    /// Take a socket out of the live stream (it will catch up from the
    /// database); its cursor and subscriptions.
    pub fn hold(&self, id: u64) -> Option<(i64, Subs)> {
        let mut inner = self.lock();
        let c = inner.clients.get_mut(&id)?;
        if c.live {
            // A live socket was offered everything through its cursor: the
            // catch-up that follows must not send any of it again.
            for channel in Channel::ALL.into_iter().filter(|c| *c != Channel::Audit) {
                if let Some(sub) = c.subs.0[channel.index()].as_mut() {
                    sub.since = sub.since.max(c.cursor);
                }
            }
        }
        c.live = false;
        Some((c.cursor, c.subs.clone()))
    }

    /// A socket's subscriptions (none once it is gone).
    pub fn subs(&self, id: u64) -> Subs {
        self.lock()
            .clients
            .get(&id)
            .map(|c| c.subs.clone())
            .unwrap_or_default()
    }

    /// Queue `snapshots` and set the subscriptions of `channels` in one step,
    /// so no event of theirs can overtake their snapshot. Outbox channels
    /// skip events up to `since`; the audit channel starts at the audit
    /// log's current position. The subscriptions as they now are.
    pub fn subscribe(
        &self,
        id: u64,
        channels: &[Channel],
        filters: &Filters,
        since: i64,
        snapshots: Vec<String>,
    ) -> Result<Subs, Refused> {
        let mut inner = self.lock();
        let audit_position = inner.audit_position;
        let c = inner.clients.get_mut(&id).ok_or(Refused::Gone)?;
        for s in snapshots {
            if let Err(why) = offer(&c.tx, Out::Text(s)) {
                if why == Refused::Full {
                    c.closer.close(slow_consumer_close(self.capacity));
                    Metrics::add(&self.metrics.slow_consumer_drops_total);
                }
                inner.clients.remove(&id);
                return Err(why);
            }
        }
        for &channel in channels {
            let since = if channel == Channel::Audit {
                audit_position
            } else {
                since
            };
            c.subs.set(
                channel,
                Some(Sub {
                    filters: filters.clone(),
                    since,
                }),
            );
        }
        Ok(c.subs.clone())
    }

    pub fn unsubscribe(&self, id: u64, channels: &[Channel]) -> Subs {
        let mut inner = self.lock();
        match inner.clients.get_mut(&id) {
            Some(c) => {
                for &channel in channels {
                    c.subs.set(channel, None);
                }
                c.subs.clone()
            }
            None => Subs::default(),
        }
    }

    /// A held socket has replayed through `replayed_through`: rejoin the
    /// live stream if that is the poller's position (see [`seam`]).
    pub fn try_join(&self, id: u64, replayed_through: i64) -> Join {
        let mut inner = self.lock();
        let position = inner.position;
        let Some(c) = inner.clients.get_mut(&id) else {
            return Join::Gone;
        };
        match seam(replayed_through, position) {
            Some(to) => Join::ReplayTo(to),
            None => {
                c.live = true;
                c.cursor = replayed_through;
                Join::Live
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(id: i64, channel: Channel) -> Arc<Event> {
        Arc::new(Event {
            id,
            channel,
            facets: Facets::default(),
            created_at: 0,
            message: format!("{id}").into(),
        })
    }

    fn hub(capacity: usize) -> Hub {
        Hub::new(0, 0, capacity, Arc::new(Metrics::default()))
    }

    fn client(hub: &Hub) -> (u64, mpsc::Receiver<Out>, watch::Receiver<Option<Close>>) {
        let (tx, rx) = mpsc::channel(hub.capacity);
        let (closer, closed) = Closer::new();
        (hub.register(tx, closer), rx, closed)
    }

    fn drain(rx: &mut mpsc::Receiver<Out>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(m) = rx.try_recv() {
            out.push(match m {
                Out::Shared(s) => s.to_string(),
                Out::Text(s) => s,
                Out::Ping => "ping".into(),
            });
        }
        out
    }

    fn subscribe(hub: &Hub, id: u64, channels: &[Channel], since: i64) {
        hub.subscribe(id, channels, &Filters::default(), since, vec![])
            .unwrap();
    }

    #[test]
    fn live_sockets_get_their_channels_in_order() {
        let hub = hub(16);
        let (a, mut rx_a, _) = client(&hub);
        let (b, mut rx_b, _) = client(&hub);
        subscribe(&hub, a, &[Channel::Alerts, Channel::Decisions], 0);
        subscribe(&hub, b, &[Channel::Decisions], 0);
        let batch = [
            event(1, Channel::Alerts),
            event(2, Channel::Decisions),
            event(3, Channel::Threats),
            event(4, Channel::Alerts),
        ];
        hub.publish(&batch, 4, &[], 0);
        assert_eq!(drain(&mut rx_a), ["1", "2", "4"]);
        assert_eq!(drain(&mut rx_b), ["2"]);
        // A batch that overlaps what was sent is not sent twice.
        hub.publish(
            &[event(4, Channel::Alerts), event(5, Channel::Alerts)],
            5,
            &[],
            0,
        );
        assert_eq!(drain(&mut rx_a), ["5"]);
    }

    #[test]
    fn a_full_queue_closes_that_socket_with_1013_and_no_other() {
        let hub = hub(2);
        let (slow, _rx_slow, closed) = client(&hub);
        let (fast, mut rx_fast, _) = client(&hub);
        subscribe(&hub, slow, &[Channel::Alerts], 0);
        subscribe(&hub, fast, &[Channel::Alerts], 0);
        for id in 1..=5 {
            hub.publish(&[event(id, Channel::Alerts)], id, &[], 0);
            // The fast socket's writer keeps up.
            assert_eq!(drain(&mut rx_fast), [id.to_string()]);
        }
        let close = closed.borrow().clone().expect("closed");
        assert_eq!(close.code, code::SLOW_CONSUMER);
        assert!(close.reason.contains("slow consumer"), "{}", close.reason);
        assert_eq!(hub.metrics.slow_consumer_drops_total.load(Relaxed), 1);
        // It is gone from the hub: nothing more is offered to it.
        assert_eq!(hub.try_join(slow, 5), Join::Gone);
    }

    #[test]
    fn the_resume_seam_has_no_gap_and_no_duplicate() {
        let hub = hub(64);
        hub.publish(&[], 5, &[], 0);
        let (id, mut rx, _) = client(&hub);
        // The socket resumes from 2 and is held while it replays.
        let (cursor, _) = hub.hold(id).unwrap();
        assert_eq!(cursor, 5);
        subscribe(&hub, id, &[Channel::Alerts], 2);
        let db: Vec<_> = (1..=20).map(|i| event(i, Channel::Alerts)).collect();
        let mut sent = Vec::new();
        let mut replayed_through = 2;
        // The poller moves on while the socket replays.
        hub.publish(&db[5..8], 8, &[], 0);
        loop {
            match hub.try_join(id, replayed_through) {
                Join::Live => break,
                Join::ReplayTo(to) => {
                    sent.extend((replayed_through + 1..=to).map(|i| i.to_string()));
                    replayed_through = to;
                    // …and once more before the socket catches up.
                    if to == 8 {
                        hub.publish(&db[8..10], 10, &[], 0);
                    }
                }
                Join::Gone => panic!("dropped"),
            }
        }
        assert_eq!(replayed_through, 10);
        // Nothing was pushed live while it was held.
        assert!(drain(&mut rx).is_empty());
        hub.publish(&db[9..12], 12, &[], 0);
        sent.extend(drain(&mut rx));
        let expected: Vec<String> = (3..=12).map(|i| i.to_string()).collect();
        assert_eq!(sent, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_waits_for_sockets_that_keep_up_but_not_for_a_stuck_one() {
        let hub = hub(4);
        let (id, mut rx, _) = client(&hub);
        subscribe(&hub, id, &[Channel::Alerts], 0);
        hub.publish(&[1, 2, 3].map(|i| event(i, Channel::Alerts)), 3, &[], 0);
        // Room for one: the next batch of three waits, and goes as soon as
        // the writer has drained.
        let drained = async {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            drain(&mut rx)
        };
        let started = tokio::time::Instant::now();
        let (_, got) = tokio::join!(
            hub.wait_for_room(3, std::time::Duration::from_secs(2)),
            drained
        );
        assert_eq!(got, ["1", "2", "3"]);
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
        // Nobody drains now: the wait ends after the grace period.
        hub.publish(&[4, 5, 6].map(|i| event(i, Channel::Alerts)), 6, &[], 0);
        let started = tokio::time::Instant::now();
        hub.wait_for_room(3, std::time::Duration::from_secs(2))
            .await;
        assert!(started.elapsed() >= std::time::Duration::from_secs(2));
    }

    #[test]
    fn the_seam_rule() {
        assert_eq!(seam(10, 10), None);
        assert_eq!(seam(12, 10), None);
        assert_eq!(seam(7, 10), Some(10));
    }

    #[test]
    fn a_snapshot_comes_before_its_channels_events_and_hides_older_ones() {
        let hub = hub(16);
        let (id, mut rx, _) = client(&hub);
        hub.hold(id).unwrap();
        // Snapshot consistent with outbox id 3.
        hub.subscribe(
            id,
            &[Channel::Alerts],
            &Filters::default(),
            3,
            vec![json!({"type": "snapshot"}).to_string()],
        )
        .unwrap();
        assert_eq!(hub.try_join(id, 0), Join::Live);
        let batch: Vec<_> = (1..=5).map(|i| event(i, Channel::Alerts)).collect();
        hub.publish(&batch, 5, &[], 0);
        assert_eq!(drain(&mut rx), [r#"{"type":"snapshot"}"#, "4", "5"]);
    }

    #[test]
    fn audit_entries_reach_only_audit_subscribers_from_when_they_subscribed() {
        let hub = hub(16);
        hub.publish(&[], 0, &[event(1, Channel::Audit)], 1);
        let (id, mut rx, _) = client(&hub);
        let (other, mut rx_other, _) = client(&hub);
        subscribe(&hub, id, &[Channel::Audit], 0);
        subscribe(&hub, other, &[Channel::Alerts], 0);
        hub.publish(
            &[],
            0,
            &[event(1, Channel::Audit), event(2, Channel::Audit)],
            2,
        );
        assert_eq!(drain(&mut rx), ["2"]);
        assert!(drain(&mut rx_other).is_empty());
    }
}
