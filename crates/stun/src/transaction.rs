//! Binding transactions as a sans-IO state machine (RFC 8489 §6.2.1).
//!
//! [`Client`] never touches a socket or a clock: the caller starts a transaction, sends whatever
//! [`Client::poll_transmit`] returns, feeds received datagrams to [`Client::handle_datagram`],
//! calls [`Client::handle_timeout`] at [`Client::poll_timeout`], and reads [`Event`]s.
//! Requests are retransmitted after RTO, 2·RTO, 4·RTO… (Rc requests in all); the transaction
//! fails Rm·RTO after the last one.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::message::{parse, Attribute, Class, ErrorCode, Message, TransactionId, METHOD_BINDING};
use crate::Error;

/// Retransmission parameters; the defaults are RFC 8489's (RTO 500 ms, Rc 7, Rm 16).
#[derive(Debug, Clone)]
pub struct TransactionConfig {
    /// The first retransmission timeout; it doubles after each retransmission.
    pub initial_rto: Duration,
    /// How many requests are sent in all (the first plus retransmissions).
    pub max_requests: u32,
    /// After the last request, wait this many times `initial_rto` before giving up.
    pub last_wait_factor: u32,
    /// SOFTWARE put into requests, so server logs tell who asked. `None` leaves it out.
    pub software: Option<String>,
}

impl Default for TransactionConfig {
    fn default() -> Self {
        Self {
            initial_rto: Duration::from_millis(500),
            max_requests: 7,
            last_wait_factor: 16,
            software: Some(concat!("rtcdesk-stun ", env!("CARGO_PKG_VERSION")).to_string()),
        }
    }
}

/// A datagram the caller must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it: the STUN server.
    pub destination: SocketAddr,
    /// The encoded request.
    pub contents: Vec<u8>,
}

/// What became of a transaction. Each transaction ends with exactly one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The server answered with our reflexive address.
    Mapped {
        /// The transaction this answers.
        id: TransactionId,
        /// The server that answered.
        server: SocketAddr,
        /// Our address as the server saw it (a server-reflexive candidate).
        mapped: SocketAddr,
        /// The server's SOFTWARE, if any.
        software: Option<String>,
    },
    /// The server answered with an error response, or a success without an address.
    Failed {
        /// The transaction this answers.
        id: TransactionId,
        /// The server that answered.
        server: SocketAddr,
        /// ERROR-CODE, if the response carried one.
        error: Option<ErrorCode>,
    },
    /// No response after every retransmission.
    TimedOut {
        /// The transaction that failed.
        id: TransactionId,
        /// The server that never answered.
        server: SocketAddr,
    },
}

#[derive(Debug)]
struct Pending {
    id: TransactionId,
    server: SocketAddr,
    request: Vec<u8>,
    requests_sent: u32,
    rto: Duration,
    deadline: Instant,
}

/// Runs any number of concurrent Binding transactions.
#[derive(Debug, Default)]
pub struct Client {
    config: TransactionConfig,
    pending: Vec<Pending>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

impl Client {
    /// A client with these retransmission parameters.
    pub fn new(config: TransactionConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// Starts a Binding transaction towards `server`; its first request is ready at once.
    pub fn start_binding(
        &mut self,
        now: Instant,
        server: SocketAddr,
    ) -> Result<TransactionId, Error> {
        let mut request = Message::binding_request()?;
        if let Some(software) = &self.config.software {
            request
                .attributes
                .push(Attribute::Software(software.clone()));
        }
        request.attributes.push(Attribute::Fingerprint(0));
        let id = request.transaction_id;
        let bytes = request.encode(None);
        self.transmits.push_back(Transmit {
            destination: server,
            contents: bytes.clone(),
        });
        self.pending.push(Pending {
            id,
            server,
            request: bytes,
            requests_sent: 1,
            rto: self.config.initial_rto,
            deadline: now + self.last_wait_or_rto(1, self.config.initial_rto),
        });
        Ok(id)
    }

    fn last_wait_or_rto(&self, requests_sent: u32, rto: Duration) -> Duration {
        if requests_sent >= self.config.max_requests {
            self.config.initial_rto * self.config.last_wait_factor
        } else {
            rto
        }
    }

    /// Offers a received datagram. Returns `true` when it answered one of our transactions (the
    /// caller should not pass it on), `false` when it is not ours: not STUN, not a response, or
    /// an unknown transaction id. Responses that fail to parse are not ours either.
    pub fn handle_datagram(&mut self, source: SocketAddr, bytes: &[u8]) -> bool {
        let Ok(message) = parse(bytes) else {
            return false;
        };
        if message.method != METHOD_BINDING
            || !matches!(message.class, Class::SuccessResponse | Class::ErrorResponse)
        {
            return false;
        }
        let Some(index) = self
            .pending
            .iter()
            .position(|p| p.id == message.transaction_id)
        else {
            return false;
        };
        let pending = self.pending.swap_remove(index);
        // A response from another address than the one asked is still accepted: the
        // transaction id is 96 random bits, and NATs or anycast servers may answer from elsewhere.
        let _ = source;
        let server = pending.server;
        let id = pending.id;
        let event = match (message.class, message.mapped_address()) {
            (Class::SuccessResponse, Some(mapped)) => Event::Mapped {
                id,
                server,
                mapped,
                software: message.software().map(str::to_string),
            },
            _ => Event::Failed {
                id,
                server,
                error: message.error_code().cloned(),
            },
        };
        self.events.push_back(event);
        true
    }

    /// Advances time: retransmits requests whose RTO passed and fails exhausted transactions.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut index = 0;
        while index < self.pending.len() {
            let pending = &self.pending[index];
            if pending.deadline > now {
                index += 1;
                continue;
            }
            if pending.requests_sent >= self.config.max_requests {
                let done = self.pending.swap_remove(index);
                self.events.push_back(Event::TimedOut {
                    id: done.id,
                    server: done.server,
                });
                continue;
            }
            let requests_sent = pending.requests_sent + 1;
            let rto = pending.rto * 2;
            let wait = self.last_wait_or_rto(requests_sent, rto);
            let pending = &mut self.pending[index];
            pending.requests_sent = requests_sent;
            pending.rto = rto;
            pending.deadline = now + wait;
            self.transmits.push_back(Transmit {
                destination: pending.server,
                contents: pending.request.clone(),
            });
            index += 1;
        }
    }

    /// The next datagram to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next finished transaction, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Client::handle_timeout`] must be called next; `None` when nothing is pending.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending.iter().map(|p| p.deadline).min()
    }

    /// Whether any transaction still waits for a response.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> SocketAddr {
        "192.0.2.1:3478".parse().unwrap()
    }

    fn response_to(request: &[u8], mapped: &str) -> Vec<u8> {
        let request = parse(request).unwrap();
        Message {
            class: Class::SuccessResponse,
            method: METHOD_BINDING,
            transaction_id: request.transaction_id,
            attributes: vec![
                Attribute::XorMappedAddress(mapped.parse().unwrap()),
                Attribute::Fingerprint(0),
            ],
        }
        .encode(None)
    }

    #[test]
    fn a_response_ends_the_transaction_with_the_mapped_address() {
        let now = Instant::now();
        let mut client = Client::new(TransactionConfig::default());
        let id = client.start_binding(now, server()).unwrap();
        let request = client.poll_transmit().unwrap();
        assert_eq!(request.destination, server());
        let parsed = parse(&request.contents).unwrap();
        assert_eq!(parsed.class, Class::Request);
        assert!(parsed.has_fingerprint());

        assert!(client.handle_datagram(
            server(),
            &response_to(&request.contents, "203.0.113.5:6000")
        ));
        assert_eq!(
            client.poll_event(),
            Some(Event::Mapped {
                id,
                server: server(),
                mapped: "203.0.113.5:6000".parse().unwrap(),
                software: None,
            })
        );
        assert!(client.is_idle());
        assert_eq!(client.poll_timeout(), None);
    }

    #[test]
    fn responses_to_other_transactions_are_not_ours() {
        let now = Instant::now();
        let mut client = Client::new(TransactionConfig::default());
        client.start_binding(now, server()).unwrap();
        let request = client.poll_transmit().unwrap();
        let mut stranger = response_to(&request.contents, "203.0.113.5:6000");
        stranger[8] ^= 0xFF; // another transaction id; the fingerprint no longer matches either
        assert!(!client.handle_datagram(server(), &stranger));
        assert!(!client.handle_datagram(server(), b"\x80\x60 not stun at all......"));
        assert_eq!(client.poll_event(), None);
        assert!(!client.is_idle());
    }

    #[test]
    fn retransmits_at_doubling_intervals_then_times_out_after_rm_rto() {
        let start = Instant::now();
        let mut client = Client::new(TransactionConfig::default());
        let id = client.start_binding(start, server()).unwrap();
        let first = client.poll_transmit().unwrap();

        // RFC 8489 §6.2.1: requests at 0, 500, 1500, 3500, 7500, 15500, 31500 ms;
        // failure at 31500 + 16 × 500 = 39500 ms.
        let mut sent_at = vec![0u64];
        let timed_out_at = loop {
            let now = client.poll_timeout().unwrap();
            client.handle_timeout(now);
            while let Some(transmit) = client.poll_transmit() {
                assert_eq!(transmit, first, "a retransmission repeats the request");
                sent_at.push((now - start).as_millis() as u64);
            }
            if let Some(event) = client.poll_event() {
                assert_eq!(
                    event,
                    Event::TimedOut {
                        id,
                        server: server()
                    }
                );
                break (now - start).as_millis() as u64;
            }
        };
        assert_eq!(sent_at, [0, 500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(timed_out_at, 39500);
        assert!(client.is_idle());
    }

    #[test]
    fn a_late_response_during_retransmission_still_counts() {
        let start = Instant::now();
        let mut client = Client::new(TransactionConfig::default());
        client.start_binding(start, server()).unwrap();
        let request = client.poll_transmit().unwrap();
        client.handle_timeout(start + Duration::from_millis(500));
        assert!(client.poll_transmit().is_some());
        assert!(client.handle_datagram(server(), &response_to(&request.contents, "198.51.100.1:1")));
        assert!(matches!(client.poll_event(), Some(Event::Mapped { .. })));
        client.handle_timeout(start + Duration::from_secs(60));
        assert_eq!(client.poll_transmit(), None);
        assert_eq!(client.poll_event(), None);
    }

    #[test]
    fn error_responses_fail_the_transaction() {
        let now = Instant::now();
        let mut client = Client::new(TransactionConfig::default());
        let id = client.start_binding(now, server()).unwrap();
        let request = parse(&client.poll_transmit().unwrap().contents).unwrap();
        let error = ErrorCode {
            code: 400,
            reason: "Bad Request".into(),
        };
        let response = Message {
            class: Class::ErrorResponse,
            method: METHOD_BINDING,
            transaction_id: request.transaction_id,
            attributes: vec![Attribute::ErrorCode(error.clone())],
        }
        .encode(None);
        assert!(client.handle_datagram(server(), &response));
        assert_eq!(
            client.poll_event(),
            Some(Event::Failed {
                id,
                server: server(),
                error: Some(error)
            })
        );
    }

    #[test]
    fn concurrent_transactions_are_told_apart() {
        let now = Instant::now();
        let other: SocketAddr = "192.0.2.2:3478".parse().unwrap();
        let mut client = Client::new(TransactionConfig::default());
        let first = client.start_binding(now, server()).unwrap();
        let second = client.start_binding(now, other).unwrap();
        assert_ne!(first, second);
        let to_first = client.poll_transmit().unwrap();
        let to_second = client.poll_transmit().unwrap();
        assert!(client.handle_datagram(other, &response_to(&to_second.contents, "203.0.113.2:2")));
        assert!(client.handle_datagram(server(), &response_to(&to_first.contents, "203.0.113.1:1")));
        let ids: Vec<_> = std::iter::from_fn(|| client.poll_event())
            .map(|e| match e {
                Event::Mapped { id, mapped, .. } => (id, mapped.port()),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(ids, [(second, 2), (first, 1)]);
    }
}
