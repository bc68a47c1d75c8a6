//! Agents at work from their own mail client: whose mail carries an agent's authority
//! (`authority`), what their mail to a ticket does (`mail`: commands, the approved reply), the
//! wording that never reaches a customer (`wording`), and the shared mailbox as their queue
//! (`shared_mailbox`: cards by state, replies found in Sent). Pure.

pub mod authority;
pub mod mail;
pub mod shared_mailbox;
pub mod wording;
