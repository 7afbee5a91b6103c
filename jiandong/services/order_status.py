"""Order statuses as stored and shown, and the groups of them the order and payment rules use."""

from __future__ import annotations

CLOSED, AWAITING, PAID, TIMED_OUT, REFUNDING, REFUNDED, CANCELLED = -1, 0, 1, 2, 3, 4, 5
# Money was received for these.
PAID_STATES = (PAID, REFUNDING, REFUNDED)
# Ended without a payment (so far: a payment that still arrives is applied all the same).
ENDED_STATES = (CLOSED, TIMED_OUT, CANCELLED)
# For SQL text, e.g. `status IN (-1, 2, 5)`: a partial index is used only for its literal predicate.
ENDED_SQL = ", ".join(map(str, ENDED_STATES))
