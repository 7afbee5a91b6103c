-- WeChat Pay refuses closeorder in the first 5 minutes after an order is created there
-- (wechat-aliyun.md §3.5), so an order cancelled or closed by its buyer is ended here at once and
-- closed at WeChat Pay later, by the order round.
--   prepaid_at        the first unifiedorder WeChat Pay accepted (the order exists there since then at the latest)
--   wechat_closed_at  when WeChat Pay confirmed the order can no longer be paid there; NULL while it was
--                     never closed there
ALTER TABLE orders ADD COLUMN prepaid_at timestamptz, ADD COLUMN wechat_closed_at timestamptz;

-- Until now a prepay id lived two hours from its (latest) unifiedorder, and an order with one was
-- ended only after WeChat Pay had closed it.
UPDATE orders SET prepaid_at = prepay_expires_at - interval '2 hours' WHERE prepay_id IS NOT NULL;
UPDATE orders SET wechat_closed_at = closed_at WHERE prepay_id IS NOT NULL AND status IN (-1, 2, 5);

-- The orders the round still has to close at WeChat Pay.
CREATE INDEX orders_open_at_wechat_idx ON orders (prepaid_at)
    WHERE status IN (-1, 2, 5) AND prepay_id IS NOT NULL AND wechat_closed_at IS NULL;
