"""Tables of the sample policy book (SQLite).

Kept close to what a core system holds, and no more: agents, families and
people, products, policies, open debit failures, claims; and what the IVR
writes: payments, promises to pay, phone changes with their audit trail and
review flags, cancellation requests, and the idempotency keys of writes.
"""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS agents (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, phone TEXT NOT NULL,
    active INTEGER NOT NULL, left_on TEXT);
CREATE INDEX IF NOT EXISTS agents_phone ON agents(phone);
CREATE TABLE IF NOT EXISTS persons (
    id TEXT PRIMARY KEY, family_id TEXT NOT NULL, first_name TEXT NOT NULL, last_name TEXT NOT NULL,
    dob TEXT NOT NULL, id_number TEXT NOT NULL, phone TEXT, language TEXT NOT NULL DEFAULT 'en');
CREATE INDEX IF NOT EXISTS persons_phone ON persons(phone);
CREATE INDEX IF NOT EXISTS persons_family ON persons(family_id);
CREATE TABLE IF NOT EXISTS products (
    code TEXT PRIMARY KEY, name TEXT NOT NULL, coverage_text TEXT NOT NULL,
    downgrade_allowed INTEGER NOT NULL, min_sum_assured REAL NOT NULL);
CREATE TABLE IF NOT EXISTS policies (
    number TEXT PRIMARY KEY, holder_id TEXT NOT NULL REFERENCES persons(id),
    insured_id TEXT NOT NULL REFERENCES persons(id), product TEXT NOT NULL REFERENCES products(code),
    status TEXT NOT NULL, start_date TEXT NOT NULL, premium REAL NOT NULL, sum_assured REAL NOT NULL,
    next_due TEXT NOT NULL, agent_id TEXT REFERENCES agents(id), payment_account TEXT NOT NULL,
    card_token TEXT, card_last4 TEXT);
CREATE INDEX IF NOT EXISTS policies_holder ON policies(holder_id);
CREATE TABLE IF NOT EXISTS debit_failures (
    id INTEGER PRIMARY KEY, policy_number TEXT NOT NULL REFERENCES policies(number),
    amount REAL NOT NULL, due_date TEXT NOT NULL, reason TEXT NOT NULL, cancel_on TEXT NOT NULL,
    resolved_at TEXT, resolution TEXT);
CREATE INDEX IF NOT EXISTS failures_open ON debit_failures(policy_number, resolved_at);
CREATE TABLE IF NOT EXISTS claims (
    reference TEXT PRIMARY KEY, policy_number TEXT NOT NULL REFERENCES policies(number),
    stage TEXT NOT NULL, next_step TEXT NOT NULL, opened_on TEXT NOT NULL, closed INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS claims_policy ON claims(policy_number);
CREATE TABLE IF NOT EXISTS payments (
    reference TEXT PRIMARY KEY, policy_number TEXT NOT NULL REFERENCES policies(number),
    amount REAL NOT NULL, gateway_ref TEXT NOT NULL, card_last4 TEXT, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS promises (
    reference TEXT PRIMARY KEY, policy_number TEXT NOT NULL REFERENCES policies(number),
    pay_by TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    id TEXT PRIMARY KEY, person_id TEXT NOT NULL REFERENCES persons(id), field TEXT NOT NULL,
    old_value TEXT, new_value TEXT, channel TEXT NOT NULL, flags TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reviews (
    id TEXT PRIMARY KEY, audit_id TEXT NOT NULL REFERENCES audit(id), person_id TEXT NOT NULL,
    reason TEXT NOT NULL, created_at TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS cancellations (
    reference TEXT PRIMARY KEY, policy_number TEXT NOT NULL REFERENCES policies(number),
    reason TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS idempotency (key TEXT PRIMARY KEY, result TEXT NOT NULL, created_at TEXT NOT NULL);
"""
