-- Agent authority (issue #23). Keep in step with the other backend's 0006_agent_authority.sql.
-- Cards and notices carry a ticket's agents' address (support+A<epoch>.T000123.<mac>), never
-- shown to customers. The epoch is the address's generation: rotating it revokes older cards.
-- NULL: a ticket from before agents' addresses, whose old cards carry the customer's address
-- (accepted from agents for agent_mail.legacy_card_days after the upgrade).
ALTER TABLE tickets ADD COLUMN agent_token_epoch INTEGER;

-- Facts about this installation, each written once: e.g. when agents' addresses came in.
CREATE TABLE supportd_meta (
    key   TEXT   PRIMARY KEY,
    value INTEGER NOT NULL
);
