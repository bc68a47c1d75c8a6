//! The pure part of intake, what `supportd inspect` runs too: parse → screen → reply text →
//! thread hints → classify on one mail's bytes. The same functions the daemon uses, never a copy.

use crate::config::Settings;
use crate::domain::{Classification, EmailAddress, InboundMail, ScreenVerdict, ThreadHints};
use crate::inbound::classify::Classifier;
use crate::inbound::screen::{self, ScreenContext};
use crate::inbound::thread::{self, ReplySigner};
use crate::inbound::{parse, reply_text};
use serde::Serialize;
use std::sync::Arc;

/// The pure stages' settings: all `inspect` needs.
#[derive(Debug, Clone)]
pub struct Analyzer {
    pub signer: ReplySigner,
    pub support_address: EmailAddress,
    pub screen: ScreenContext,
    pub classifier: Arc<Classifier>,
    /// The agents' names and addresses: a trailing block naming one is their signature.
    pub agent_names: Vec<String>,
    /// Mails larger than this (bytes) get their headers parsed only (see
    /// [`parse::parse_bounded`]); `service.max_mail_mb`.
    pub max_mail_bytes: usize,
}

/// `service.max_mail_mb`'s default, in bytes.
pub const DEFAULT_MAX_MAIL_BYTES: usize = 40 * 1024 * 1024;

impl Analyzer {
    pub fn new(
        support_address: EmailAddress,
        message_id_domain: String,
        signer: ReplySigner,
        classifier: Arc<Classifier>,
    ) -> Analyzer {
        Analyzer {
            screen: ScreenContext {
                message_id_domain,
                support_address: support_address.clone(),
            },
            support_address,
            signer,
            classifier,
            agent_names: Vec::new(),
            max_mail_bytes: DEFAULT_MAX_MAIL_BYTES,
        }
    }

    /// The analyzer a configuration describes.
    pub fn from_settings(s: &Settings) -> Analyzer {
        Analyzer::new(
            s.service.support_address.clone(),
            s.message_id_domain().to_string(),
            ReplySigner::new(
                s.threading.reply_secret.clone(),
                s.threading.old_reply_secrets.clone(),
            ),
            s.classifier(),
        )
        .with_agents(&s.agents)
        .with_max_mail_bytes(s.service.max_mail_mb as usize * 1024 * 1024)
    }

    /// Mails above `bytes` are parsed for their headers only.
    pub fn with_max_mail_bytes(mut self, bytes: usize) -> Analyzer {
        self.max_mail_bytes = bytes;
        self
    }

    /// Knows the agents' names and addresses (to cut their signatures).
    pub fn with_agents(mut self, agents: &[crate::domain::Agent]) -> Analyzer {
        self.agent_names = agents
            .iter()
            .flat_map(|a| [a.name.clone(), a.address.to_string()])
            .collect();
        self
    }

    /// parse → screen → reply text → thread hints → classify. Pure.
    pub fn analyze(&self, raw: &[u8]) -> Analysis {
        let mail = parse::parse_bounded(raw, self.max_mail_bytes);
        let mut known: Vec<&str> = self.agent_names.iter().map(String::as_str).collect();
        // The sender's own address on a line of its own is a signature (Foxmail writes one); a
        // customer's name under their text is theirs to sign with and stays.
        known.extend(mail.from.as_ref().map(|a| a.as_str()));
        let reply_text::NewText {
            text: reply_text,
            images: reply_images,
        } = reply_text::extract_known(&mail.text, &known);
        let screen = screen::screen(&mail, &reply_text, &self.screen);
        let hints = thread::hints(&mail, &self.support_address, &self.signer);
        let classification =
            self.classifier
                .classify(mail.from.as_ref(), &mail.subject, &reply_text);
        Analysis {
            mail,
            screen,
            reply_text,
            reply_images,
            hints,
            classification,
            packed: None,
        }
    }
}

/// What the pure stages conclude about one mail (what `inspect` prints).
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub mail: InboundMail,
    pub screen: ScreenVerdict,
    pub reply_text: String,
    /// Content-IDs of the pictures inside the new text (a pasted screenshot, not a logo).
    pub reply_images: Vec<String>,
    pub hints: ThreadHints,
    pub classification: Classification,
    /// The raw mail packed for storage ([`crate::store::pack_raw`]), when intake packed it
    /// with the analysis (`inspect` does not).
    #[serde(skip)]
    pub packed: Option<crate::store::PackedRaw>,
}
