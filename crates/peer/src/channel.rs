//! Data channels: which ones exist, what a message on them is, and the per-channel outgoing
//! queues that feed SCTP in priority order.
//!
//! SCTP has one send buffer for the whole association, shared by every stream, and sends its
//! ordered messages in the order they were written. So the order of writes is the priority:
//! each time there is room, the queues are served pointer first, then input, control, and the
//! bulk `file` channel last. And the bulk channel may only have [`BULK_IN_FLIGHT`] bytes in
//! SCTP's buffer: then all of it is already on the wire, and a key press written after it leaves
//! at once instead of waiting behind a file.

use std::collections::VecDeque;

use str0m::channel::{ChannelConfig, Reliability};

/// How many bytes of the bulk channel may sit in SCTP's send buffer (sent and not yet
/// acknowledged, or waiting). SCTP sends ordered messages in write order, so a key press waits
/// behind whatever of this is not yet on the wire: kept at about one congestion window of a
/// usable link, it is all on the wire and the key leaves at once. It also caps file throughput
/// at this much per round trip: 64 MB/s on a 1 ms LAN, 1.6 MB/s at 40 ms. An adaptive window
/// (tried: 1.5 × bytes acknowledged per round trip) followed SCTP's bursty acknowledgements too
/// closely to keep keys on time.
pub const BULK_IN_FLIGHT: usize = 64 * 1024;

/// A data channel, by what it carries (DESIGN.md, input and control protocols).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Channel {
    /// Pointer moves: unordered, no retransmits (a stale move is worthless). Served first.
    Pointer,
    /// Keys, buttons, wheel, text: reliable and ordered, never dropped.
    Input,
    /// Chat, clipboard, file offers, stats: reliable and ordered JSON text.
    Control,
    /// File bytes: reliable and ordered, served last and kept from filling SCTP's buffer, so a
    /// transfer never delays input.
    File,
    /// A channel the remote side opened with a label that is none of ours (a browser may open
    /// its own); the number is its SCTP stream id. Its label comes with
    /// [`PeerEvent::RemoteChannelOpen`](crate::PeerEvent::RemoteChannelOpen).
    Remote(u16),
}

impl Channel {
    /// The channels the offerer opens, in priority order.
    pub const OURS: [Channel; 4] = [
        Channel::Pointer,
        Channel::Input,
        Channel::Control,
        Channel::File,
    ];

    /// The label on the wire; a browser controller matches channels by it. `None` for a
    /// remote channel, whose label is the remote side's.
    pub fn label(self) -> Option<&'static str> {
        match self {
            Channel::Pointer => Some("pointer"),
            Channel::Input => Some("input"),
            Channel::Control => Some("control"),
            Channel::File => Some("file"),
            Channel::Remote(_) => None,
        }
    }

    /// Our channel with this label, if it is one of ours.
    pub fn from_label(label: &str) -> Option<Channel> {
        Channel::OURS.into_iter().find(|c| c.label() == Some(label))
    }

    /// Whether messages on this channel must all arrive (and so are never dropped locally).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Channel::Pointer)
    }

    /// The position in the priority order (0 is served first); remote channels share the
    /// bulk channel's place after it.
    fn rank(self) -> usize {
        match self {
            Channel::Pointer => 0,
            Channel::Input => 1,
            Channel::Control => 2,
            Channel::File => 3,
            Channel::Remote(_) => 4,
        }
    }

    pub(crate) fn config(self) -> Option<ChannelConfig> {
        let label = self.label()?;
        Some(ChannelConfig {
            label: label.to_string(),
            ordered: self != Channel::Pointer,
            reliability: if self.is_reliable() {
                Reliability::Reliable
            } else {
                Reliability::MaxRetransmits { retransmits: 0 }
            },
            negotiated: None,
            protocol: String::new(),
        })
    }
}

/// One data-channel message. Text goes out with the string PPID (a browser's `onmessage` sees a
/// string), binary with the binary PPID (an `ArrayBuffer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// UTF-8 text, e.g. a JSON control message.
    Text(String),
    /// Bytes, e.g. an input event or a file chunk.
    Binary(Vec<u8>),
}

impl Message {
    /// The bytes on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(text) => text.as_bytes(),
            Message::Binary(bytes) => bytes,
        }
    }

    /// Whether it goes with the binary PPID.
    pub fn is_binary(&self) -> bool {
        matches!(self, Message::Binary(_))
    }

    /// The bytes, whichever kind it was.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Message::Text(text) => text.into_bytes(),
            Message::Binary(bytes) => bytes,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.as_bytes().len()
    }
}

/// Where a queue stands when asked to take a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Queued {
    /// It waits its turn.
    Yes,
    /// The channel's queue is full: the caller decides (wait, drop, or give up).
    Full,
}

/// What [`OutgoingQueues::pump`] needs from the engine: room, and a write that may refuse.
pub(crate) trait ChannelWriter {
    /// Whether the channel is open for writing.
    fn is_open(&mut self, channel: Channel) -> bool;
    /// Bytes of this channel waiting in SCTP's buffer.
    fn buffered(&mut self, channel: Channel) -> usize;
    /// Writes one message; false when SCTP has no room for it now.
    fn write(&mut self, channel: Channel, message: &Message) -> bool;
}

/// The per-channel queues of messages not yet handed to SCTP. Bounded by count per channel.
#[derive(Debug)]
pub(crate) struct OutgoingQueues {
    /// Indexed by [`Channel::rank`]; remote channels each have their own entry.
    queues: Vec<(Channel, VecDeque<Message>)>,
    capacity: usize,
}

impl OutgoingQueues {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            queues: Channel::OURS
                .iter()
                .map(|&c| (c, VecDeque::new()))
                .collect(),
            capacity: capacity.max(1),
        }
    }

    /// Queues a message behind the channel's others, unless that queue is full.
    pub(crate) fn push(&mut self, channel: Channel, message: Message) -> Queued {
        let queue = match self.queues.iter_mut().position(|(c, _)| *c == channel) {
            Some(index) => &mut self.queues[index].1,
            None => {
                self.queues.push((channel, VecDeque::new()));
                self.queues.sort_by_key(|(c, _)| (c.rank(), *c));
                let index = self
                    .queues
                    .iter()
                    .position(|(c, _)| *c == channel)
                    .unwrap_or(0);
                &mut self.queues[index].1
            }
        };
        if queue.len() >= self.capacity {
            return Queued::Full;
        }
        queue.push_back(message);
        Queued::Yes
    }

    /// How many more messages the channel's queue takes.
    pub(crate) fn room(&self, channel: Channel) -> usize {
        let used = self
            .queues
            .iter()
            .find(|(c, _)| *c == channel)
            .map_or(0, |(_, q)| q.len());
        self.capacity.saturating_sub(used)
    }

    /// Messages waiting on this channel.
    #[cfg(test)]
    pub(crate) fn waiting(&self, channel: Channel) -> usize {
        self.queues
            .iter()
            .find(|(c, _)| *c == channel)
            .map_or(0, |(_, q)| q.len())
    }

    /// Forgets a closed channel's queue.
    pub(crate) fn remove(&mut self, channel: Channel) {
        if let Some((_, queue)) = self.queues.iter_mut().find(|(c, _)| *c == channel) {
            queue.clear();
        }
        if let Channel::Remote(_) = channel {
            self.queues.retain(|(c, _)| *c != channel);
        }
    }

    /// Hands waiting messages to SCTP in priority order while it takes them. A channel whose
    /// head does not fit stops there (order within a channel is kept) and lower channels wait
    /// too, so a big file chunk never overtakes what is before it, and nothing lower goes ahead
    /// of a higher channel that is waiting for room. Pointer moves SCTP cannot take at once are
    /// dropped: a newer one follows. Returns how many messages went out.
    pub(crate) fn pump(&mut self, writer: &mut impl ChannelWriter) -> usize {
        let mut sent = 0;
        for (channel, queue) in &mut self.queues {
            let channel = *channel;
            if queue.is_empty() || !writer.is_open(channel) {
                continue;
            }
            let bulk = matches!(channel, Channel::File | Channel::Remote(_));
            while let Some(message) = queue.front() {
                if bulk && writer.buffered(channel) >= BULK_IN_FLIGHT {
                    return sent;
                }
                if writer.write(channel, message) {
                    queue.pop_front();
                    sent += 1;
                } else if channel.is_reliable() {
                    return sent;
                } else {
                    queue.pop_front();
                    tracing::trace!("pointer move dropped: SCTP buffer full");
                }
            }
        }
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An SCTP stand-in with a shared buffer of `room` bytes that drains only when told.
    struct Buffer {
        room: usize,
        buffered: Vec<(Channel, usize)>,
        written: Vec<(Channel, Message)>,
        open: bool,
    }

    impl ChannelWriter for Buffer {
        fn is_open(&mut self, _: Channel) -> bool {
            self.open
        }
        fn buffered(&mut self, channel: Channel) -> usize {
            self.buffered
                .iter()
                .filter(|(c, _)| *c == channel)
                .map(|(_, n)| n)
                .sum()
        }
        fn write(&mut self, channel: Channel, message: &Message) -> bool {
            let used: usize = self.buffered.iter().map(|(_, n)| n).sum();
            if used + message.len() > self.room {
                return false;
            }
            self.buffered.push((channel, message.len()));
            self.written.push((channel, message.clone()));
            true
        }
    }

    fn buffer(room: usize) -> Buffer {
        Buffer {
            room,
            buffered: Vec::new(),
            written: Vec::new(),
            open: true,
        }
    }

    #[test]
    fn higher_channels_go_first_and_bulk_never_fills_the_buffer() {
        let mut queues = OutgoingQueues::new(100);
        for _ in 0..20 {
            queues.push(Channel::File, Message::Binary(vec![0; 16 * 1024]));
        }
        queues.push(Channel::Control, Message::Text("{}".into()));
        queues.push(Channel::Input, Message::Binary(vec![1]));
        let mut sctp = buffer(4 << 20);
        queues.pump(&mut sctp);
        assert_eq!(sctp.written[0].0, Channel::Input);
        assert_eq!(sctp.written[1].0, Channel::Control);
        let file_bytes = sctp.buffered(Channel::File);
        assert!(file_bytes <= BULK_IN_FLIGHT, "{file_bytes}");
        assert!(file_bytes > BULK_IN_FLIGHT - 16 * 1024, "{file_bytes}");
        // A key press queued now goes out at once: the buffer has room, bulk is capped.
        queues.push(Channel::Input, Message::Binary(vec![2]));
        assert_eq!(queues.pump(&mut sctp), 1);
        assert_eq!(sctp.written.last().unwrap().0, Channel::Input);
    }

    #[test]
    fn a_full_queue_says_so_and_nothing_is_lost() {
        let mut queues = OutgoingQueues::new(2);
        assert_eq!(
            queues.push(Channel::Input, Message::Binary(vec![1])),
            Queued::Yes
        );
        assert_eq!(
            queues.push(Channel::Input, Message::Binary(vec![2])),
            Queued::Yes
        );
        assert_eq!(
            queues.push(Channel::Input, Message::Binary(vec![3])),
            Queued::Full
        );
        // Other channels have their own room.
        assert_eq!(
            queues.push(Channel::Control, Message::Text("x".into())),
            Queued::Yes
        );
        let mut closed = buffer(1 << 20);
        closed.open = false;
        assert_eq!(queues.pump(&mut closed), 0);
        assert_eq!(queues.room(Channel::Input), 0);
        let mut sctp = buffer(1 << 20);
        assert_eq!(queues.pump(&mut sctp), 3);
        let input: Vec<_> = sctp
            .written
            .iter()
            .filter(|(c, _)| *c == Channel::Input)
            .map(|(_, m)| m.clone())
            .collect();
        assert_eq!(input, [Message::Binary(vec![1]), Message::Binary(vec![2])]);
    }

    #[test]
    fn reliable_messages_wait_for_room_and_pointer_moves_are_dropped() {
        let mut queues = OutgoingQueues::new(10);
        queues.push(Channel::Pointer, Message::Binary(vec![0; 60]));
        queues.push(Channel::Pointer, Message::Binary(vec![0; 60]));
        queues.push(Channel::Input, Message::Binary(vec![0; 60]));
        let mut sctp = buffer(100);
        queues.pump(&mut sctp);
        // The first move fits; the second is dropped; the key waits.
        assert_eq!(sctp.written.len(), 1);
        assert_eq!(queues.waiting(Channel::Pointer), 0);
        assert_eq!(queues.waiting(Channel::Input), 1);
        sctp.buffered.clear();
        queues.pump(&mut sctp);
        assert_eq!(queues.waiting(Channel::Input), 0);
    }

    #[test]
    fn remote_channels_get_queues_of_their_own_after_ours() {
        let mut queues = OutgoingQueues::new(4);
        queues.push(Channel::Remote(9), Message::Text("a".into()));
        queues.push(Channel::Input, Message::Binary(vec![1]));
        let mut sctp = buffer(1 << 20);
        queues.pump(&mut sctp);
        assert_eq!(sctp.written[0].0, Channel::Input);
        assert_eq!(sctp.written[1].0, Channel::Remote(9));
        queues.remove(Channel::Remote(9));
        assert_eq!(queues.waiting(Channel::Remote(9)), 0);
    }

    #[test]
    fn labels_round_trip_and_only_pointer_is_unreliable() {
        for channel in Channel::OURS {
            assert_eq!(Channel::from_label(channel.label().unwrap()), Some(channel));
            assert_eq!(channel.is_reliable(), channel != Channel::Pointer);
        }
        assert_eq!(Channel::from_label("chat"), None);
        assert_eq!(Channel::Remote(3).label(), None);
    }
}
