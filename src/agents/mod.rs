//! Agents at work from their own mail client: their mail to a ticket (`mail`: authority, commands,
//! the approved reply) and the shared mailbox as their queue (`shared_mailbox`: cards by state,
//! replies found in Sent). Pure.

pub mod mail;
pub mod shared_mailbox;
