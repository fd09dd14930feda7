"""Schema, as sqlite-utils ``Migrations``: append new steps, never edit applied ones."""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

MIGRATIONS = Migrations("carebot")


@MIGRATIONS()
def m001_core(db: Database) -> None:
    """Customers, catalog, orders, conversation log, FAQ, link tokens, handoff requests."""
    db.executescript(
        """
        CREATE TABLE customers (
            id INTEGER PRIMARY KEY,
            external_id TEXT UNIQUE,
            telegram_user_id INTEGER UNIQUE,
            telegram_chat_id INTEGER,
            first_name TEXT NOT NULL DEFAULT '',
            last_name TEXT,
            username TEXT,
            email TEXT,
            country TEXT,
            language TEXT,
            timezone TEXT,
            reminders_opt_out INTEGER NOT NULL DEFAULT 0,
            surveys_opt_out INTEGER NOT NULL DEFAULT 0,
            blocked INTEGER NOT NULL DEFAULT 0,
            banned INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            last_seen_at TEXT
        );

        CREATE TABLE products (
            id INTEGER PRIMARY KEY,
            sku TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            category TEXT,
            price REAL,
            active INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );

        CREATE TABLE orders (
            id INTEGER PRIMARY KEY,
            external_id TEXT NOT NULL UNIQUE,
            customer_id INTEGER NOT NULL REFERENCES customers(id),
            status TEXT NOT NULL DEFAULT 'placed',
            placed_at TEXT NOT NULL,
            total REAL NOT NULL DEFAULT 0,
            currency TEXT NOT NULL DEFAULT 'GBP',
            country TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX orders_by_customer ON orders(customer_id, placed_at);

        CREATE TABLE order_items (
            id INTEGER PRIMARY KEY,
            order_id INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
            line_no INTEGER NOT NULL,
            product_id INTEGER REFERENCES products(id),
            sku TEXT NOT NULL,
            description TEXT NOT NULL,
            quantity INTEGER NOT NULL,
            unit_price REAL NOT NULL,
            UNIQUE (order_id, line_no)
        );
        CREATE INDEX order_items_by_product ON order_items(product_id);

        CREATE TABLE order_events (
            id INTEGER PRIMARY KEY,
            order_id INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
            status TEXT NOT NULL,
            at TEXT NOT NULL
        );
        CREATE INDEX order_events_by_order ON order_events(order_id, at);

        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            customer_id INTEGER REFERENCES customers(id),
            chat_id INTEGER NOT NULL,
            direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            kind TEXT NOT NULL,
            update_id INTEGER,
            telegram_message_id INTEGER,
            reply_to_message_id INTEGER,
            text TEXT,
            payload TEXT,
            created_at TEXT NOT NULL
        );
        CREATE UNIQUE INDEX messages_incoming_update ON messages(update_id)
            WHERE direction = 'in';
        CREATE INDEX messages_by_customer ON messages(customer_id, id);
        CREATE INDEX messages_by_chat_message ON messages(chat_id, telegram_message_id);

        CREATE TABLE faq_entries (
            id INTEGER PRIMARY KEY,
            slug TEXT NOT NULL,
            lang TEXT NOT NULL,
            question TEXT NOT NULL,
            keywords TEXT NOT NULL DEFAULT '',
            answer TEXT NOT NULL,
            question_terms TEXT NOT NULL DEFAULT '',
            keyword_terms TEXT NOT NULL DEFAULT '',
            answer_terms TEXT NOT NULL DEFAULT '',
            updated_at TEXT NOT NULL,
            UNIQUE (slug, lang)
        );

        CREATE TABLE faq_feedback (
            id INTEGER PRIMARY KEY,
            customer_id INTEGER NOT NULL REFERENCES customers(id),
            faq_slug TEXT NOT NULL,
            helpful INTEGER NOT NULL,
            telegram_message_id INTEGER,
            created_at TEXT NOT NULL,
            UNIQUE (customer_id, telegram_message_id)
        );

        CREATE TABLE link_tokens (
            token_hash TEXT PRIMARY KEY,
            customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            used_at TEXT,
            used_by_telegram_user_id INTEGER
        );

        CREATE TABLE handoff_requests (
            id INTEGER PRIMARY KEY,
            customer_id INTEGER NOT NULL REFERENCES customers(id),
            reason TEXT NOT NULL,
            question TEXT,
            status TEXT NOT NULL DEFAULT 'open',
            created_at TEXT NOT NULL
        );
        CREATE INDEX handoff_requests_open ON handoff_requests(status, created_at);
        """
    )
    # Porter stemming on top of unicode61 so "delivered" finds "delivery".
    db.table("faq_entries").enable_fts(
        ["question_terms", "keyword_terms", "answer_terms"],
        tokenize="porter unicode61 remove_diacritics 2",
        create_triggers=True,
    )


@MIGRATIONS()
def m002_purchase_history(db: Database) -> None:
    """Returns and fee lines, import runs, customer segments, ingest API replay guard."""
    db.executescript(
        """
        ALTER TABLE orders ADD COLUMN kind TEXT NOT NULL DEFAULT 'order'
            CHECK (kind IN ('order', 'return'));
        ALTER TABLE orders ADD COLUMN source TEXT NOT NULL DEFAULT 'shop';
        ALTER TABLE order_items ADD COLUMN is_product INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE order_events ADD COLUMN source TEXT NOT NULL DEFAULT 'shop';
        ALTER TABLE order_events ADD COLUMN notified_at TEXT;
        ALTER TABLE customers ADD COLUMN order_updates_opt_out INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX orders_by_placed ON orders(placed_at);

        CREATE TABLE import_runs (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL,
            profile TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            summary TEXT
        );

        CREATE TABLE customer_stats (
            customer_id INTEGER PRIMARY KEY REFERENCES customers(id) ON DELETE CASCADE,
            orders INTEGER NOT NULL,
            returns INTEGER NOT NULL,
            spend REAL NOT NULL,
            first_purchase TEXT,
            last_purchase TEXT,
            recency_score INTEGER NOT NULL,
            frequency_score INTEGER NOT NULL,
            monetary_score INTEGER NOT NULL,
            segment TEXT NOT NULL,
            key_customer INTEGER NOT NULL DEFAULT 0,
            computed_at TEXT NOT NULL
        );
        CREATE INDEX customer_stats_by_segment ON customer_stats(segment);

        CREATE TABLE api_signatures (
            signature TEXT PRIMARY KEY,
            received_at TEXT NOT NULL
        );
        CREATE INDEX api_signatures_by_time ON api_signatures(received_at);
        """
    )


@MIGRATIONS()
def m003_tickets(db: Database) -> None:
    """Tickets with their events, relayed-message map, complaint drafts and canned replies.

    Open handoff requests (from before tickets existed) become inquiry/complaint tickets.
    """
    db.executescript(
        """
        CREATE TABLE tickets (
            id INTEGER PRIMARY KEY,
            customer_id INTEGER NOT NULL REFERENCES customers(id),
            kind TEXT NOT NULL CHECK (kind IN ('complaint', 'inquiry')),
            source TEXT NOT NULL,
            category TEXT,
            order_id INTEGER REFERENCES orders(id),
            subject TEXT,
            status TEXT NOT NULL DEFAULT 'open'
                CHECK (status IN ('open', 'answered', 'resolved', 'reopened', 'closed')),
            priority TEXT NOT NULL DEFAULT 'normal'
                CHECK (priority IN ('urgent', 'high', 'normal', 'low')),
            assignee_id INTEGER,
            assignee_name TEXT,
            staff_chat_id INTEGER,
            staff_thread_id INTEGER,
            card_message_id INTEGER,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            first_response_at TEXT,
            first_responder_id INTEGER,
            first_responder_name TEXT,
            resolved_at TEXT,
            resolved_by_id INTEGER,
            resolved_by_name TEXT,
            closed_at TEXT,
            first_response_due TEXT,
            resolution_due TEXT,
            first_response_breached_at TEXT,
            resolution_breached_at TEXT,
            satisfaction INTEGER
        );
        CREATE INDEX tickets_by_customer ON tickets(customer_id, id);
        CREATE INDEX tickets_by_status ON tickets(status, created_at);
        CREATE INDEX tickets_by_created ON tickets(created_at);
        CREATE UNIQUE INDEX tickets_by_topic ON tickets(staff_chat_id, staff_thread_id)
            WHERE staff_thread_id IS NOT NULL;

        CREATE TABLE ticket_events (
            id INTEGER PRIMARY KEY,
            ticket_id INTEGER NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
            at TEXT NOT NULL,
            event TEXT NOT NULL,
            actor_kind TEXT NOT NULL CHECK (actor_kind IN ('customer', 'staff', 'system')),
            actor_id INTEGER,
            actor_name TEXT,
            from_status TEXT,
            to_status TEXT,
            detail TEXT
        );
        CREATE INDEX ticket_events_by_ticket ON ticket_events(ticket_id, id);

        CREATE TABLE ticket_messages (
            id INTEGER PRIMARY KEY,
            ticket_id INTEGER NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
            direction TEXT NOT NULL CHECK (direction IN ('from_customer', 'to_customer', 'note')),
            author_id INTEGER,
            author_name TEXT,
            kind TEXT NOT NULL,
            text TEXT,
            source_chat_id INTEGER NOT NULL,
            source_message_id INTEGER NOT NULL,
            reply_to_message_id INTEGER,
            target_chat_id INTEGER,
            target_message_id INTEGER,
            relay_status TEXT NOT NULL DEFAULT 'pending'
                CHECK (relay_status IN ('pending', 'delivered', 'failed', 'internal')),
            relay_error TEXT,
            created_at TEXT NOT NULL,
            relayed_at TEXT,
            UNIQUE (source_chat_id, source_message_id)
        );
        CREATE INDEX ticket_messages_by_ticket ON ticket_messages(ticket_id, id);
        CREATE INDEX ticket_messages_by_target
            ON ticket_messages(target_chat_id, target_message_id);

        CREATE TABLE ticket_drafts (
            customer_id INTEGER PRIMARY KEY REFERENCES customers(id) ON DELETE CASCADE,
            step TEXT NOT NULL CHECK (step IN ('order', 'category', 'describe')),
            order_id INTEGER REFERENCES orders(id),
            category TEXT,
            messages TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );

        CREATE TABLE canned_replies (
            name TEXT PRIMARY KEY,
            body TEXT NOT NULL,
            updated_by INTEGER,
            updated_at TEXT NOT NULL
        );

        INSERT INTO tickets (customer_id, kind, source, subject, status, created_at, updated_at)
            SELECT customer_id,
                   CASE reason WHEN 'complaint' THEN 'complaint' ELSE 'inquiry' END,
                   reason, question, 'open', created_at, created_at
            FROM handoff_requests WHERE status = 'open' ORDER BY id;
        INSERT INTO ticket_events (ticket_id, at, event, actor_kind, actor_id, to_status, detail)
            SELECT id, created_at, 'created', 'customer', customer_id, 'open',
                   'from an earlier handoff request'
            FROM tickets;
        DROP TABLE handoff_requests;
        """
    )


@MIGRATIONS()
def m004_surveys(db: Database) -> None:
    """Satisfaction surveys: one row per invitation, with its due time, answer and follow-up."""
    db.executescript(
        """
        CREATE TABLE surveys (
            id INTEGER PRIMARY KEY,
            customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('purchase', 'support')),
            order_id INTEGER REFERENCES orders(id),
            ticket_id INTEGER REFERENCES tickets(id),
            staff_id INTEGER,
            staff_name TEXT,
            status TEXT NOT NULL DEFAULT 'scheduled'
                CHECK (status IN ('scheduled', 'sending', 'sent', 'answered', 'expired',
                                  'skipped')),
            skip_reason TEXT,
            due_at TEXT NOT NULL,
            sent_at TEXT,
            expires_at TEXT,
            chat_id INTEGER,
            message_id INTEGER,
            score INTEGER CHECK (score BETWEEN 1 AND 5),
            answered_at TEXT,
            followup TEXT CHECK (followup IN ('comment', 'nps')),
            comment TEXT,
            nps INTEGER CHECK (nps BETWEEN 0 AND 10),
            followup_at TEXT,
            recovery_ticket_id INTEGER REFERENCES tickets(id),
            created_at TEXT NOT NULL
        );
        CREATE UNIQUE INDEX surveys_one_per_order ON surveys(order_id) WHERE kind = 'purchase';
        CREATE UNIQUE INDEX surveys_one_per_ticket ON surveys(ticket_id) WHERE kind = 'support';
        CREATE INDEX surveys_by_customer ON surveys(customer_id, sent_at);
        CREATE INDEX surveys_by_status ON surveys(status, due_at);
        """
    )


@MIGRATIONS()
def m005_campaigns(db: Database) -> None:
    """Reminder campaigns, their delivery ledger, custom occasions and customer birthdays."""
    db.executescript(
        """
        ALTER TABLE customers ADD COLUMN birthday TEXT;

        CREATE TABLE custom_occasions (
            name TEXT PRIMARY KEY,
            label TEXT NOT NULL DEFAULT '',
            rule TEXT NOT NULL,
            by_country TEXT NOT NULL DEFAULT '{}',
            updated_at TEXT NOT NULL
        );

        CREATE TABLE campaigns (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            occasion TEXT NOT NULL,
            year INTEGER NOT NULL,
            days_before INTEGER NOT NULL,
            send_time TEXT NOT NULL,
            spec TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'draft'
                CHECK (status IN ('draft', 'scheduled', 'running', 'paused', 'done',
                                  'cancelled')),
            opens_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT,
            audience_size INTEGER,
            excluded TEXT
        );

        CREATE TABLE campaign_deliveries (
            id INTEGER PRIMARY KEY,
            campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
            customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
            chat_id INTEGER NOT NULL,
            language TEXT NOT NULL,
            occasion_date TEXT NOT NULL,
            due_at TEXT NOT NULL,
            text TEXT NOT NULL,
            suggested TEXT NOT NULL DEFAULT '[]',
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'skipped',
                                  'uncertain')),
            reason TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            message_id INTEGER,
            sent_at TEXT,
            response TEXT CHECK (response IN ('not_this_year', 'stop')),
            responded_at TEXT,
            clicks INTEGER NOT NULL DEFAULT 0,
            first_click_at TEXT,
            created_at TEXT NOT NULL,
            UNIQUE (campaign_id, customer_id)
        );
        CREATE INDEX campaign_deliveries_due ON campaign_deliveries(campaign_id, status, due_at);
        CREATE INDEX campaign_deliveries_by_customer
            ON campaign_deliveries(customer_id, sent_at);
        """
    )


@MIGRATIONS()
def m006_dashboard(db: Database) -> None:
    """The web dashboard: accounts, sessions, one-time login links, settings, audit trail."""
    db.executescript(
        """
        CREATE TABLE dashboard_accounts (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL UNIQUE COLLATE NOCASE,
            display_name TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('admin', 'staff')),
            password_hash TEXT,
            telegram_user_id INTEGER UNIQUE,
            active INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            last_login_at TEXT
        );

        CREATE TABLE dashboard_sessions (
            token_hash TEXT PRIMARY KEY,
            account_id INTEGER NOT NULL REFERENCES dashboard_accounts(id) ON DELETE CASCADE,
            csrf_token TEXT NOT NULL,
            created_at TEXT NOT NULL,
            last_seen_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            remote TEXT
        );
        CREATE INDEX dashboard_sessions_by_account ON dashboard_sessions(account_id);

        CREATE TABLE dashboard_login_links (
            token_hash TEXT PRIMARY KEY,
            account_id INTEGER NOT NULL REFERENCES dashboard_accounts(id) ON DELETE CASCADE,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            used_at TEXT
        );

        CREATE TABLE dashboard_settings (
            section TEXT PRIMARY KEY,
            settings TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            updated_by INTEGER REFERENCES dashboard_accounts(id) ON DELETE SET NULL
        );

        CREATE TABLE dashboard_audit (
            id INTEGER PRIMARY KEY,
            account_id INTEGER REFERENCES dashboard_accounts(id) ON DELETE SET NULL,
            action TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '',
            at TEXT NOT NULL
        );
        """
    )
