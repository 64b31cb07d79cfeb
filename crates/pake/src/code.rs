//! The twelve-digit code a puppet shows: nine the signaling server routes by, three it never sees.

use std::fmt;
use std::str::FromStr;

use rtcdesk_proto::signal::ControlCode;

/// The last three digits of the code a puppet shows. The puppet draws them itself from the OS
/// CSPRNG and never sends them anywhere; the controller's user types them. They are the SPAKE2
/// password's secret part.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Secret(u16);

impl Secret {
    /// How many digits a secret has.
    pub const DIGITS: usize = 3;
    /// One more than the largest secret.
    pub const SPACE: u16 = 1000;

    /// A fresh secret from the operating system's random number generator.
    pub fn random() -> Result<Self, getrandom::Error> {
        // Rejection sampling keeps the digits uniform: 65 000 is the largest multiple of 1000
        // below 2^16.
        loop {
            let mut bytes = [0u8; 2];
            getrandom::fill(&mut bytes)?;
            let value = u16::from_be_bytes(bytes);
            if value < 65_000 {
                return Ok(Self(value % Self::SPACE));
            }
        }
    }

    /// The secret with this value, if it has at most three digits.
    pub fn from_number(number: u16) -> Option<Self> {
        (number < Self::SPACE).then_some(Self(number))
    }

    /// The three digits.
    pub fn digits(self) -> String {
        format!("{:03}", self.0)
    }
}

/// Never printed by accident: a log line must not leak the part the server does not know.
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// What a person reads off the puppet and types into a controller: `123 456 789 012`. The first
/// nine digits are the control code of signaling v1 ([`ControlCode`]); the last three, when
/// present, the [`Secret`]. A code of nine digits alone (what a browser page or an older puppet
/// uses) pairs without end-to-end verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairingCode {
    /// The part the signaling server routes by.
    pub route: ControlCode,
    /// The part only the two ends know, when the code has it.
    pub secret: Option<Secret>,
}

impl PairingCode {
    /// A code with both parts.
    pub fn new(route: ControlCode, secret: Secret) -> Self {
        Self {
            route,
            secret: Some(secret),
        }
    }
}

/// Grouped by three, as people are shown it: `123 456 789 012`.
impl fmt::Display for PairingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.route)?;
        if let Some(secret) = self.secret {
            write!(f, " {}", secret.digits())?;
        }
        Ok(())
    }
}

/// Why text is not a pairing code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPairingCode;

impl fmt::Display for BadPairingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a control code is 12 digits as the puppet shows it (123 456 789 012), or 9 digits \
             without end-to-end verification; spaces and hyphens are allowed",
        )
    }
}

impl std::error::Error for BadPairingCode {}

/// Twelve or nine ASCII digits, with spaces or hyphens anywhere and whitespace around; at most
/// 40 bytes in all.
impl FromStr for PairingCode {
    type Err = BadPairingCode;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.len() > 40 {
            return Err(BadPairingCode);
        }
        let mut digits = [0u8; 12];
        let mut count = 0;
        for c in text.trim().chars() {
            match c {
                ' ' | '-' => continue,
                '0'..='9' if count < digits.len() => {
                    digits[count] = c as u8 - b'0';
                    count += 1;
                }
                _ => return Err(BadPairingCode),
            }
        }
        let number = |range: std::ops::Range<usize>| {
            digits[range]
                .iter()
                .fold(0u32, |n, &d| n * 10 + u32::from(d))
        };
        let route = ControlCode::from_number(number(0..9)).ok_or(BadPairingCode)?;
        match count {
            9 => Ok(Self {
                route,
                secret: None,
            }),
            12 => {
                let secret = u16::try_from(number(9..12)).map_err(|_| BadPairingCode)?;
                Ok(Self::new(
                    route,
                    Secret::from_number(secret).ok_or(BadPairingCode)?,
                ))
            }
            _ => Err(BadPairingCode),
        }
    }
}
