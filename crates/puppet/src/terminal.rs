//! The puppet's terminal: the one reader of stdin.
//!
//! A line typed while a question is open answers it (`y` or `yes` accepts; anything else, no
//! answer within the timeout, or a closed stdin refuses). Questions are whether a controller
//! may connect and whether to take a file a controller offers; they are asked one at a time,
//! in order of arrival. `/send PATH` offers a file to every connected controller; other lines
//! are chat, sent to every connected controller.

use std::collections::VecDeque;
use std::time::Duration;

use rtcdesk_proto::signal::SessionId;
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::exchange::ChatSender;
use crate::files::PuppetFiles;
use crate::run::printable;
use crate::{Decision, IncomingRequest};

/// A controller offers a file and the puppet's user decides.
#[derive(Debug, Clone)]
pub(crate) struct FileQuestion {
    /// The session it came on.
    pub session: SessionId,
    /// The controller's name.
    pub from: String,
    /// The offer's id.
    pub id: u32,
    /// What the file would be called here.
    pub safe_name: String,
    /// Its size in bytes.
    pub size: u64,
}

/// One question on the terminal.
#[derive(Debug)]
enum Question {
    Controller(IncomingRequest),
    File(FileQuestion),
}

/// What the terminal task serves.
pub(crate) struct Terminal {
    /// Controllers to ask about (`None` when another policy decides).
    pub requests: Option<mpsc::Receiver<IncomingRequest>>,
    /// Where answers go.
    pub decisions: mpsc::Sender<(SessionId, Decision)>,
    /// How long a question waits.
    pub timeout: Duration,
    /// Where typed chat lines go (`None`: lines that answer nothing are ignored).
    pub chat: Option<ChatSender>,
    /// File offers to ask about.
    pub file_questions: mpsc::Receiver<FileQuestion>,
    /// Where file answers and `/send` go.
    pub files: PuppetFiles,
}

impl Terminal {
    /// Reads stdin until it closes and nothing is left to ask, or the puppet stops.
    pub(crate) async fn run(mut self) {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        let mut stdin_open = true;
        let mut file_questions_open = true;
        let mut waiting: VecDeque<Question> = VecDeque::new();
        let mut asking: Option<(Question, Instant)> = None;
        loop {
            if asking.is_none() {
                if let Some(question) = waiting.pop_front() {
                    if stdin_open {
                        self.ask(&question);
                        asking = Some((question, Instant::now() + self.timeout));
                    } else if !self.answer(question, Decision::Decline).await {
                        return;
                    }
                    continue;
                }
            }
            if !stdin_open && self.requests.is_none() && !file_questions_open {
                return;
            }
            let deadline = asking.as_ref().map(|(_, at)| *at);
            tokio::select! {
                request = next_request(&mut self.requests) => match request {
                    Some(request) => waiting.push_back(Question::Controller(request)),
                    None => self.requests = None,
                },
                question = self.file_questions.recv(), if file_questions_open => match question {
                    Some(question) => waiting.push_back(Question::File(question)),
                    None => file_questions_open = false,
                },
                line = lines.next_line(), if stdin_open => match line {
                    Ok(Some(line)) => match asking.take() {
                        Some((question, _)) => {
                            let decision = match line.trim().to_ascii_lowercase().as_str() {
                                "y" | "yes" => Decision::Control,
                                "v" | "view" | "view only" => Decision::ViewOnly,
                                _ => Decision::Decline,
                            };
                            if !self.answer(question, decision).await {
                                return;
                            }
                        }
                        None => self.command_or_chat(&line),
                    },
                    Ok(None) | Err(_) => {
                        stdin_open = false;
                        if let Some((question, _)) = asking.take() {
                            println!("(no terminal to ask on: refused; use --accept-all or --accept-files for unattended use)");
                            if !self.answer(question, Decision::Decline).await {
                                return;
                            }
                        }
                    }
                },
                _ = until(deadline) => {
                    if let Some((question, _)) = asking.take() {
                        println!("(no answer in {} s: refused)", self.timeout.as_secs());
                        if !self.answer(question, Decision::Decline).await {
                            return;
                        }
                    }
                }
            }
        }
    }

    fn ask(&self, question: &Question) {
        match question {
            Question::Controller(request) => self.ask_controller(request),
            Question::File(file) => println!(
                "\naccept {} ({}) from \"{}\"? [y/N] ({} s to answer)",
                file.safe_name,
                rtcdesk_files::bytes(file.size),
                printable(&file.from),
                self.timeout.as_secs()
            ),
        }
    }

    /// Carries out an answer; `false` once the puppet has stopped listening. For a file,
    /// only `yes` takes it.
    async fn answer(&self, question: Question, decision: Decision) -> bool {
        match question {
            Question::Controller(request) => self.decide(request.session, decision).await,
            Question::File(file) => {
                match self
                    .files
                    .answer(file.session, file.id, decision == Decision::Control)
                {
                    Ok(()) => true,
                    Err(crate::FilesError::Stopped) => false,
                    Err(error) => {
                        println!("({error})");
                        true
                    }
                }
            }
        }
    }

    /// `/send PATH` offers a file; `/help` lists the commands; anything else is chat.
    fn command_or_chat(&self, line: &str) {
        let trimmed = line.trim();
        if let Some(path) = trimmed.strip_prefix("/send ") {
            let path = path.trim();
            match self.files.send(path) {
                Ok(()) => println!("(offering {path} to every connected controller)"),
                Err(error) => println!("({error})"),
            }
            return;
        }
        if trimmed == "/send" || trimmed == "/help" {
            println!("(commands: /send PATH offers a file to every connected controller; other lines are chat)");
            return;
        }
        self.chat(line);
    }

    fn ask_controller(&self, request: &IncomingRequest) {
        let note = if request.verified {
            "It holds your whole code (verified end to end)."
        } else {
            "NOT verified end to end: a browser, or someone with the first 9 digits only. \
             Accept only if you expect them."
        };
        println!(
            "\n\"{}\" wants to control this computer. {note} Accept? [y]es / [v]iew only / [N]o ({} s to answer)",
            printable(&request.from),
            self.timeout.as_secs()
        );
    }

    /// Sends an answer; `false` once the puppet has stopped listening.
    async fn decide(&self, session: SessionId, decision: Decision) -> bool {
        self.decisions.send((session, decision)).await.is_ok()
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
