-- Delivery analytics (docs/analytics.md): what the storefront loads, per photo and day. Each
-- worker counts /img answers in memory and adds its counts here every ECOGRAM_ANALYTICS_FLUSH
-- seconds (one INSERT ... ON CONFLICT DO UPDATE per flush), so the columns are sums over every
-- worker and instance. bytes_saved = answers × the original's file_size − bytes_sent (a 304
-- sends nothing and saves the whole original).
CREATE TABLE delivery_stats (
    image_id     bigint NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    day          date NOT NULL,
    requests     bigint NOT NULL DEFAULT 0 CHECK (requests >= 0),
    bytes_sent   bigint NOT NULL DEFAULT 0 CHECK (bytes_sent >= 0),
    bytes_saved  bigint NOT NULL DEFAULT 0,
    hits         bigint NOT NULL DEFAULT 0 CHECK (hits >= 0),
    renders      bigint NOT NULL DEFAULT 0 CHECK (renders >= 0),
    render_ms    double precision NOT NULL DEFAULT 0 CHECK (render_ms >= 0),
    PRIMARY KEY (image_id, day)
);
CREATE INDEX delivery_stats_day ON delivery_stats (day);
