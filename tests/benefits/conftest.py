"""Benefits tests reuse the members built for activities."""

from tests.activities.conftest import make_member

__all__ = ["make_member"]
