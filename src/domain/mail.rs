//! An inbound mail as every stage after `parse` sees it, and the screening verdict on it.

use crate::domain::{EmailAddress, MessageId, Millis};
use serde::Serialize;

/// The name of our own loop header, stamped on everything supportd sends.
pub const LOOP_HEADER: &str = "X-Supportd-Loop";

/// A file a mail carries: an attachment, a picture shown inside the text (`inline`, referenced by
/// its Content-ID from the HTML), or a forwarded mail (`message/rfc822`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Attachment {
    /// The decoded file name, if it has one.
    pub name: Option<String>,
    /// `image/png`, `application/pdf`, `message/rfc822`, …
    pub content_type: String,
    /// Bytes, decoded (the transfer encoding undone).
    pub size: usize,
    /// The Content-ID, without angle brackets (`cid:` references in HTML name it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_id: Option<String>,
    /// `Content-Disposition: inline`.
    pub inline: bool,
    /// A forwarded mail.
    pub message: bool,
    /// The content, exactly as attached.
    #[serde(skip)]
    pub bytes: Vec<u8>,
}

/// One inbound mail, as the rest of the pipeline sees it.
#[derive(Debug, Clone, Serialize)]
pub struct InboundMail {
    pub message_id: MessageId,
    /// True when the mail had no usable Message-ID and one was derived from its bytes.
    pub synthetic_id: bool,
    pub from: Option<EmailAddress>,
    pub from_name: Option<String>,
    pub sender: Option<EmailAddress>,
    pub reply_to: Option<EmailAddress>,
    pub reply_to_name: Option<String>,
    pub to: Vec<EmailAddress>,
    pub cc: Vec<EmailAddress>,
    /// `Delivered-To` / `X-Original-To`: which of our addresses (maybe `support+token@…`) got it.
    pub delivered_to: Vec<EmailAddress>,
    pub subject: String,
    pub date: Option<Millis>,
    pub in_reply_to: Vec<MessageId>,
    pub references: Vec<MessageId>,
    /// Plain text of the body (HTML converted when there is no text part).
    pub text: String,
    /// `Return-Path` as given; `Some("")` is the null sender `<>` of bounces.
    pub return_path: Option<String>,
    /// Top-level MIME type, e.g. `multipart/report`.
    pub content_type: String,
    /// `report-type` parameter of a `multipart/report`.
    pub report_type: Option<String>,
    /// For a delivery report: the Message-ID of the mail that could not be delivered (from the
    /// returned headers or the attached original).
    pub bounced_message_id: Option<MessageId>,
    /// A read receipt's subject mail (RFC 8098 `Original-Message-ID` of its
    /// `message/disposition-notification` part).
    pub receipt_for: Option<MessageId>,
    /// The iCalendar METHOD of a `text/calendar` part (`REPLY`, `REQUEST`, `CANCEL`, …),
    /// upper-case (RFC 5546 §1.4).
    pub calendar_method: Option<String>,
    /// Message-IDs a gateway recorded for this mail before it rewrote its `Message-ID`
    /// (`X-Original-Message-ID` and vendors' `X-…-Original-Message-ID` forms): replies written
    /// from the sender's own copy name these, so threading indexes them too.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub original_ids: Vec<MessageId>,
    /// Header fields RFC 5322 §3.6 allows once that appear more than once (lower-case names):
    /// the first occurrence is used (what clients and filters show) and the mail is flagged.
    pub duplicate_headers: Vec<String>,
    /// Lower-cased names and raw values of the headers screening needs.
    pub screen_headers: Vec<(String, String)>,
    pub attachments: Vec<Attachment>,
    /// Content-IDs the mail's HTML shows as pictures (`<img src="cid:…">`): a signature's logo
    /// and pasted pictures, as opposed to files attached.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub html_images: Vec<String>,
    /// What was wrong with the mail. Non-empty means "flag it".
    pub problems: Vec<String>,
    /// Broken charsets repaired while reading it (the raw mail is kept as it came).
    pub repairs: Vec<String>,
}

impl InboundMail {
    /// The first value of a screening header, by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.screen_headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a screening header, by lower-case name.
    pub fn headers<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.screen_headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The person this mail's conversation is with: the From address, unless From is a no-reply
    /// or role address (a web form, a notification system) and Reply-To names someone else —
    /// then that someone (RFC 5322 §3.6.2: replies go to Reply-To). The requester of a ticket the
    /// mail opens, the address acknowledged, and the sender threading checks.
    pub fn correspondent(&self) -> Option<&EmailAddress> {
        match (&self.from, &self.reply_to) {
            (Some(from), Some(r)) if r != from && from.is_no_reply() => Some(r),
            (Some(from), _) => Some(from),
            (None, Some(r)) => Some(r),
            (None, None) => self.sender.as_ref(),
        }
    }

    /// The display name that goes with [`InboundMail::correspondent`].
    pub fn correspondent_name(&self) -> Option<&str> {
        match (self.correspondent(), &self.from) {
            (Some(c), Some(f)) if c == f => self.from_name.as_deref(),
            (Some(c), _) if self.reply_to.as_ref() == Some(c) => self.reply_to_name.as_deref(),
            _ => None,
        }
    }

    /// Everyone the mail was addressed to (To and Cc).
    pub fn recipients(&self) -> impl Iterator<Item = &EmailAddress> {
        self.to.iter().chain(self.cc.iter())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Human,
    AutoReply,
    Bounce,
    List,
    Bulk,
    Loop,
    /// A read receipt (RFC 8098 MDN, or a client's plain-text receipt): recorded on the ticket
    /// as "the customer read our mail", nothing else.
    ReadReceipt,
    /// A calendar response (RFC 5546 METHOD:REPLY; "Accepted:", "已接受:").
    CalendarReply,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Human => "human",
            Verdict::AutoReply => "auto_reply",
            Verdict::Bounce => "bounce",
            Verdict::List => "list",
            Verdict::Bulk => "bulk",
            Verdict::Loop => "loop",
            Verdict::ReadReceipt => "read_receipt",
            Verdict::CalendarReply => "calendar_reply",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScreenVerdict {
    pub verdict: Verdict,
    pub reason: String,
    /// The weight of the machine evidence found (0: none), also when it was not enough to
    /// decide: intake weighs it with what the store knows (a mail answering one of our
    /// automatic mails needs less).
    pub machine_evidence: u32,
}

impl ScreenVerdict {
    pub fn new(verdict: Verdict, reason: impl Into<String>) -> Self {
        ScreenVerdict {
            verdict,
            reason: reason.into(),
            machine_evidence: 0,
        }
    }
    pub fn is_human(&self) -> bool {
        self.verdict == Verdict::Human
    }
}
