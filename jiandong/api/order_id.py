"""The order an order or payment request names: its `id` parameter."""

from __future__ import annotations

from ..web.fields import Int, Spec
from ..web.params import MAX_ID


class OrderRef(Spec):
    """`id`: the order's id, 1..MAX_ID (ParameterError, 400, otherwise)."""

    id = Int("订单ID", minimum=1, maximum=MAX_ID)
