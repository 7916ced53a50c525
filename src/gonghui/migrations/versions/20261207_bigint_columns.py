"""every integer column 64-bit on PostgreSQL (amounts up to types.Amount's 10**12, counts)

Revision ID: 20261207_bigint_columns
Revises: 20261206_activity_templates
Create Date: 2026-12-07 09:00:00

The models map every ``Mapped[int]`` to BIGINT (``db.Base.type_annotation_map``); these
columns were created as INTEGER, so a budget above 2,147,483,647 cents failed on
PostgreSQL. SQLite's INTEGER is 64-bit already: nothing to do there. Widening rewrites
each table under an ACCESS EXCLUSIVE lock; on a large installation run it in a quiet hour.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "20261207_bigint_columns"
down_revision: str | None = "20261206_activity_templates"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS: dict[str, tuple[str, ...]] = {
    "accounts_otp_code": ("attempts",),
    "accounts_totp": ("failed_attempts", "last_step"),
    "activities_activity": ("budget_cents", "budget_points", "limit_per_day", "limit_total"),
    "activities_activity_template": (
        "budget_cents",
        "budget_points",
        "limit_per_day",
        "limit_total",
    ),
    "activities_counter": ("granted", "used"),
    "activities_idempotent_response": ("status_code",),
    "activities_lottery_draw": ("draw_no", "picked_position", "prize_position"),
    "activities_lottery_prize": ("initial_stock", "position", "stock", "value", "weight"),
    "activities_quiz_attempt": ("duration_ms", "score"),
    "baas_delivery": ("attempts",),
    "baas_delivery_attempt": ("status_code",),
    "baas_field": ("position",),
    "baas_function": ("current_version", "memory_mb"),
    "baas_function_invocation": ("peak_memory_kb", "version"),
    "baas_function_version": ("version",),
    "baas_table": ("version",),
    "baas_trigger": ("max_attempts",),
    "benefits_budget": ("cents_spent", "cents_total", "points_spent", "points_total"),
    "benefits_ledger_entry": ("amount",),
    "benefits_points_account": ("balance",),
    "benefits_voucher": ("threshold_cents", "value_cents"),
    "mall_cart_item": ("quantity",),
    "mall_order": (
        "goods_cents",
        "refund_attempt",
        "subsidy_cents",
        "total_cents",
        "voucher_cents",
    ),
    "mall_order_line": ("amount_cents", "price_cents", "quantity"),
    "mall_sku": ("position", "price_cents", "sold", "stock"),
    "members_import_job": (
        "bytes_done",
        "bytes_total",
        "rows_created",
        "rows_done",
        "rows_failed",
        "rows_ok",
        "rows_updated",
    ),
    "members_verification_flag": ("accounts",),
    "merchants_redemption": ("order_cents", "value_cents"),
    "orgs_org": ("depth",),
    "ratelimit_counter": ("count",),
    "reconciliation_difference": ("ours_cents", "theirs_cents"),
    "reconciliation_report": ("checked", "differences"),
    "tasks_task": ("attempts", "max_attempts"),
    "tasks_worker": ("pid", "threads"),
    "vouchers_org_share": ("claimed",),
    "vouchers_stock": (
        "claimed",
        "coupon_amount_cents",
        "max_coupons",
        "max_per_member",
        "position",
        "threshold_cents",
    ),
}


def _alter(to: str) -> None:
    """One ALTER TABLE per table, so each table is rewritten once."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in COLUMNS.items():
        clauses = ", ".join(f'ALTER COLUMN "{column}" TYPE {to}' for column in columns)
        op.execute(f'ALTER TABLE "{table}" {clauses}')


def upgrade() -> None:
    _alter("bigint")


def downgrade() -> None:
    _alter("integer")
