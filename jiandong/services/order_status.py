"""Order statuses as stored and shown, and the groups of them the order and payment rules use."""

from __future__ import annotations

CLOSED, AWAITING, PAID, TIMED_OUT, REFUNDING, REFUNDED, CANCELLED = -1, 0, 1, 2, 3, 4, 5
# Money was received for these.
PAID_STATES = (PAID, REFUNDING, REFUNDED)
