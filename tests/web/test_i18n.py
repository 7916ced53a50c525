"""Both languages carry every UI string the templates use."""

from __future__ import annotations

import re
from pathlib import Path

from gonghui.orgs.models import OrgLevel, Role
from gonghui.web.i18n import LOCALES, catalogue, pick_locale, translate

TEMPLATES = Path(__file__).resolve().parents[2] / "src" / "gonghui" / "web" / "templates"
_KEY = re.compile(r"""t\(\s*['"]([a-z0-9_.]+)['"]\s*[,)]""")


def test_catalogues_hold_the_same_keys() -> None:
    assert set(catalogue("zh")) == set(catalogue("en"))


def test_every_key_used_by_a_template_exists() -> None:
    used = {
        key for path in TEMPLATES.rglob("*.html") for key in _KEY.findall(path.read_text("utf-8"))
    }
    assert used, "the scan found no keys; the pattern is broken"
    for locale in LOCALES:
        assert sorted(used - set(catalogue(locale))) == []


def test_keys_built_from_enums_exist() -> None:
    """Templates build ``role.<role>``, ``level.<level>`` and ``lang.<code>`` keys."""
    families = {
        "role": [r.value for r in Role],
        "level": [lv.value for lv in OrgLevel],
        "lang": list(LOCALES),
    }
    for locale in LOCALES:
        missing = [
            f"{prefix}.{value}"
            for prefix, values in families.items()
            for value in values
            if f"{prefix}.{value}" not in catalogue(locale)
        ]
        assert missing == []


def test_locale_choice_prefers_query_then_cookie_then_browser() -> None:
    assert pick_locale("en", "zh", "zh-CN") == "en"
    assert pick_locale(None, "en", "zh-CN") == "en"
    assert pick_locale(None, None, "en-US,en;q=0.9") == "en"
    assert pick_locale("fr", None, None) == "zh"
    assert translate("en", "orgs.count", n=3) == "3 organisations"
    assert translate("zh", "orgs.count", n=3) == "共 3 个组织"


def test_keys_built_from_activity_and_wallet_enums_exist() -> None:
    """The H5, activity and mall pages build keys from activity, prize, voucher, question,
    import and order states, and from why a refund failed."""
    from gonghui.activities.lottery.models import PrizeKind
    from gonghui.activities.models import ActivityKind, ActivityStatus
    from gonghui.activities.quiz.models import QuestionKind
    from gonghui.benefits.models import PrizeStatus, VoucherStatus
    from gonghui.mall.models import AbnormalRefund, OrderState, RefundFailure
    from gonghui.members.models import ImportStatus

    families = {
        "kind.": [k.value for k in ActivityKind],
        "status.": [s.value for s in ActivityStatus],
        "prizekind.": [k.value for k in PrizeKind],
        "qkind.": [k.value for k in QuestionKind],
        "prize.": [s.value for s in PrizeStatus],
        "voucher.": [s.value for s in VoucherStatus],
        "import.status_": [s.value for s in ImportStatus],
        "dash.": ["publish", "pause", "resume", "end"],
        "address.": ["name", "phone", "address"],
        "address.invalid_": ["name", "phone", "address"],
        "wizard.": [
            "question_count",
            "time_limit_s",
            "pass_score",
            "attempts_per_day",
            "question_tag",
            "quiz_reward",
        ],
        "reviews.done_": ["approve", "reject"],
        "mall.state.": [s.value for s in OrderState],
        "mallc.refund_failure.": [f.value for f in RefundFailure],
        "mallc.abnormal.": [a.value for a in AbnormalRefund],
        "mallc.abnormal_applied.": [a.value for a in AbnormalRefund],
    }
    for locale in LOCALES:
        missing = [
            prefix + value
            for prefix, values in families.items()
            for value in values
            if prefix + value not in catalogue(locale)
        ]
        assert missing == []
