//! The classify criterion bench's statement mix (`bench/benches/classify.rs`),
//! shared by the instruction-count harness and its criterion bench.

/// The statement mix of `bench/benches/classify.rs`, byte for byte.
pub const MIX: &[&str] = &[
    "SELECT id, email, created_at FROM users WHERE id = $1",
    "SELECT * FROM orders WHERE customer_id = $1 AND status = 'open' ORDER BY created_at DESC LIMIT 20",
    "INSERT INTO events (kind, payload, at) VALUES ($1, $2, now())",
    "UPDATE accounts SET balance = balance - $1, updated_at = now() WHERE id = $2",
    "SELECT u.id, u.name, count(o.id) FROM users u LEFT JOIN orders o ON o.user_id = u.id WHERE u.id = $1 GROUP BY u.id, u.name",
    "DELETE FROM sessions WHERE expires_at < now()",
    "BEGIN",
    "SELECT value FROM settings WHERE key = 'feature.flags'",
    "INSERT INTO order_items (order_id, sku, qty, price) VALUES ($1, $2, $3, $4) RETURNING id",
    "COMMIT",
    "UPDATE inventory SET qty = qty - 1 WHERE sku = $1 AND qty > 0",
    "SELECT 1",
    "WITH monthly AS (SELECT date_trunc('month', o.created_at) AS month, c.region, sum(oi.qty * oi.price) AS revenue, count(DISTINCT o.customer_id) AS buyers FROM orders o JOIN order_items oi ON oi.order_id = o.id JOIN customers c ON c.id = o.customer_id WHERE o.created_at >= now() - interval '12 months' AND o.status IN ('paid', 'shipped') GROUP BY 1, 2), ranked AS (SELECT month, region, revenue, buyers, rank() OVER (PARTITION BY month ORDER BY revenue DESC) AS r FROM monthly) SELECT month, region, revenue, buyers FROM ranked WHERE r <= 5 ORDER BY month, r",
    "SELECT p.id, p.name, coalesce(s.total, 0) AS sold, coalesce(r.avg_rating, 0) AS rating /* dashboard */ FROM products p LEFT JOIN (SELECT sku, sum(qty) AS total FROM order_items GROUP BY sku) s ON s.sku = p.sku LEFT JOIN (SELECT product_id, avg(stars) AS avg_rating FROM reviews WHERE created_at > now() - interval '90 days' GROUP BY product_id) r ON r.product_id = p.id WHERE p.active AND p.category_id = ANY($1) ORDER BY sold DESC NULLS LAST LIMIT 100",
    "SELECT c.id, c.email, max(o.created_at) AS last_order, sum(o.total) FILTER (WHERE o.status = 'paid') AS lifetime FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.created_at BETWEEN $1 AND $2 GROUP BY c.id, c.email HAVING sum(o.total) > 1000 ORDER BY lifetime DESC",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_idx ON orders (customer_id, created_at)",
    "ALTER TABLE customers ADD COLUMN marketing_opt_in boolean NOT NULL DEFAULT false",
    "CREATE TABLE IF NOT EXISTS audit_log (id bigserial PRIMARY KEY, actor text NOT NULL, action text NOT NULL, at timestamptz DEFAULT now())",
    "SET statement_timeout = '5s'",
    "SELECT id FROM jobs WHERE state = 'queued' ORDER BY priority DESC LIMIT 1 FOR UPDATE SKIP LOCKED",
];
