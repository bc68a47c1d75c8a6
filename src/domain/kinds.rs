//! Closed sets of names that are stored as text: what an event records, what kind of mail
//! supportd writes. Parsed at the edge (`parse` returns `None` for a name this version does not
//! know), written with `as_str`.

use serde::Serialize;

macro_rules! named {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            pub fn parse(s: &str) -> Option<$name> {
                match s {
                    $($text => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

named! {
    /// What an event in a ticket's log (or an ops event, without a ticket) records.
    EventKind {
        /// A new ticket was opened by a mail.
        TicketCreated = "ticket_created",
        /// Its classification, with the rules that fired.
        Classified = "classified",
        /// The new ticket refers to another one it may not join (a stranger quoting a tag).
        Linked = "linked",
        /// The requester is the Reply-To of a mail from a no-reply address.
        RequesterFromReplyTo = "requester_from_reply_to",
        AckQueued = "ack_queued",
        /// The loop brake held the acknowledgement back.
        AckSuppressed = "ack_suppressed",
        /// A mail from a template could not be rendered.
        MailFailed = "mail_failed",
        MailSent = "mail_sent",
        /// Sending was given up, or the mail bounced.
        OutboxFailed = "outbox_failed",
        /// A person's mail that could be filed on no ticket (ops event).
        UnattributedMail = "unattributed_mail",
        /// Machine mail on no ticket (ops event).
        ScreenedOut = "screened_out",
        /// A mail the database refused, kept raw (ops event).
        MailQuarantined = "mail_quarantined",
        /// A mail with structural problems, stored and flagged.
        MalformedMail = "malformed_mail",
        CustomerReplied = "customer_replied",
        /// A colleague who is not an agent wrote about the ticket: an internal comment.
        ColleagueComment = "colleague_comment",
        AutomaticReplyReceived = "automatic_reply_received",
        /// A follow-up raised the ticket's urgency or severity.
        Reclassified = "reclassified",
        ClassificationCorrected = "classification_corrected",
        /// Mail from an agent's address without an agent's authority.
        AgentAuthorityRefused = "agent_authority_refused",
        AgentMail = "agent_mail",
        /// An agent's draft returned to them (bad command, forbidden wording).
        AgentMailReturned = "agent_mail_returned",
        AgentReplied = "agent_replied",
        /// An agent's mail accepted at an old card's customer address (transition window).
        LegacyCardAddress = "legacy_card_address",
        /// A mail from someone who is not an agent came to a ticket's agents' address.
        AgentAddressExposed = "agent_address_exposed",
        /// The ticket's agents' address was renewed; older cards stop working.
        AgentAddressRotated = "agent_address_rotated",
        /// A reply sent from the shared mailbox around supportd (wording not checked).
        AgentReplyUnchecked = "agent_reply_unchecked",
        ReplyByOtherAgent = "reply_by_other_agent",
        ReplyQueued = "reply_queued",
        Note = "note",
        OwnerAssigned = "owner_assigned",
        Pending = "pending",
        Complex = "complex",
        Escalated = "escalated",
        Solved = "solved",
        AlreadySolved = "already_solved",
        Reopened = "reopened",
        SurveySent = "survey_sent",
        SurveyAnswered = "survey_answered",
        /// The customer answered the automatic follow-up mail.
        CustomerAnswered = "customer_answered",
        FollowupSent = "followup_sent",
        FollowupRecorded = "followup_recorded",
        SlaWarning = "sla_warning",
        SlaBreached = "sla_breached",
        SlaTimerEnded = "sla_timer_ended",
        /// Work on the shared mailbox was given up.
        ImapJobFailed = "imap_job_failed",
        /// A read receipt: the customer opened one of our mails (RFC 8098).
        CustomerRead = "customer_read",
        /// Someone the requester (or an agent) addressed on the ticket's conversation joined it.
        ParticipantAdded = "participant_added",
        /// A customer's personal data on this ticket was erased (by whom, why; never what).
        CustomerErased = "customer_erased",
        /// The monthly service report was queued for the supervisors (month, Message-ID).
        ReportQueued = "report_queued",
    }
}

named! {
    /// What a mail supportd writes is: to customers (`ack`, `survey`, `followup`, `reply`), to
    /// agents (`notice`), or a ticket's card in the shared mailbox (`card`, never sent); the
    /// monthly service report to the supervisors (`report`, on no ticket).
    MailKind {
        Ack = "ack",
        Survey = "survey",
        Followup = "followup",
        Reply = "reply",
        Notice = "notice",
        Card = "card",
        Report = "report",
    }
}

impl MailKind {
    /// Mail supportd writes on its own (acknowledgements, surveys, follow-ups, notices), as
    /// opposed to an agent's reply: a machine answering one of these is the classic mail loop.
    pub fn is_automatic(self) -> bool {
        matches!(
            self,
            MailKind::Ack
                | MailKind::Survey
                | MailKind::Followup
                | MailKind::Notice
                | MailKind::Report
        )
    }

    /// Mail for agents (notices, cards): it carries the ticket's agents' address; everything
    /// else goes to customers and never does.
    pub fn to_agents(self) -> bool {
        matches!(self, MailKind::Notice | MailKind::Card)
    }
}
