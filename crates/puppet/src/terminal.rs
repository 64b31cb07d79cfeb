//! The puppet's terminal: the one reader of stdin.
//!
//! A line typed while a controller is waiting to be let in answers that question (`y` or
//! `yes` accepts; anything else, no answer within the timeout, or a closed stdin refuses).
//! Other lines are chat, sent to every connected controller. Questions are asked one at a
//! time, in order of arrival.

use std::collections::VecDeque;
use std::time::Duration;

use rtcdesk_proto::signal::SessionId;
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::exchange::ChatSender;
use crate::run::printable;
use crate::IncomingRequest;

/// What the terminal task serves.
pub(crate) struct Terminal {
    /// Controllers to ask about (`None` when another policy decides).
    pub requests: Option<mpsc::Receiver<IncomingRequest>>,
    /// Where answers go.
    pub decisions: mpsc::Sender<(SessionId, bool)>,
    /// How long a question waits.
    pub timeout: Duration,
    /// Where typed chat lines go (`None`: lines that answer nothing are ignored).
    pub chat: Option<ChatSender>,
}

impl Terminal {
    /// Reads stdin until it closes and nothing is left to ask, or the puppet stops.
    pub(crate) async fn run(mut self) {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        let mut stdin_open = true;
        let mut waiting: VecDeque<IncomingRequest> = VecDeque::new();
        let mut asking: Option<(SessionId, Instant)> = None;
        loop {
            if asking.is_none() {
                if let Some(request) = waiting.pop_front() {
                    if stdin_open {
                        self.ask(&request);
                        asking = Some((request.session, Instant::now() + self.timeout));
                    } else if !self.decide(request.session, false).await {
                        return;
                    }
                    continue;
                }
            }
            if !stdin_open && self.requests.is_none() {
                return;
            }
            let deadline = asking.as_ref().map(|(_, at)| *at);
            tokio::select! {
                request = next_request(&mut self.requests) => match request {
                    Some(request) => waiting.push_back(request),
                    None => self.requests = None,
                },
                line = lines.next_line(), if stdin_open => match line {
                    Ok(Some(line)) => match asking.take() {
                        Some((session, _)) => {
                            let accept = matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes");
                            if !self.decide(session, accept).await {
                                return;
                            }
                        }
                        None => self.chat(&line),
                    },
                    Ok(None) | Err(_) => {
                        stdin_open = false;
                        if let Some((session, _)) = asking.take() {
                            println!("(no terminal to ask on: rejected; use --accept-all for unattended use)");
                            if !self.decide(session, false).await {
                                return;
                            }
                        }
                    }
                },
                _ = until(deadline) => {
                    if let Some((session, _)) = asking.take() {
                        println!("(no answer in {} s: rejected)", self.timeout.as_secs());
                        if !self.decide(session, false).await {
                            return;
                        }
                    }
                }
            }
        }
    }

    fn ask(&self, request: &IncomingRequest) {
        println!(
            "\n\"{}\" wants to control this computer. Accept? [y/N] ({} s to answer)",
            printable(&request.from),
            self.timeout.as_secs()
        );
    }

    /// Sends an answer; `false` once the puppet has stopped listening.
    async fn decide(&self, session: SessionId, accept: bool) -> bool {
        self.decisions.send((session, accept)).await.is_ok()
    }

    fn chat(&self, line: &str) {
        let Some(chat) = &self.chat else { return };
        if line.trim().is_empty() {
            return;
        }
        if let Err(error) = chat.try_send(line) {
            println!("({error})");
        }
    }
}

async fn next_request(
    requests: &mut Option<mpsc::Receiver<IncomingRequest>>,
) -> Option<IncomingRequest> {
    match requests {
        Some(requests) => requests.recv().await,
        None => std::future::pending().await,
    }
}

async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
