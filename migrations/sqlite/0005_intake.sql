-- Intake correctness (issue #11). Keep in step with the other backend's 0005_intake.sql.
-- The Reply-To of an inbound mail: when From is a no-reply or role address, the person in
-- Reply-To is the ticket's requester, and both are kept.
ALTER TABLE messages ADD COLUMN reply_to TEXT;
