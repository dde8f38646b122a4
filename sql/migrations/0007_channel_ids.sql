-- Sales channels (docs/channels.md, "Exports"): a product's own id on a channel where the
-- channel's import needs one besides the shop's code — the VTEX SKU id, the Mercado Livre item
-- id, the Nuvemshop product id, a Merchant Center offer id that is not the code. Products are
-- matched by code; a code with no row here is exported under its code alone. The channel is a
-- profile id (ecogram/data/channels.toml or ECOGRAM_CHANNELS_FILE): profiles are data, so the
-- application checks it, not a foreign key. A code need not have photos yet (ids can be loaded
-- before the photos are imported).
CREATE TABLE channel_product_ids (
    channel      text NOT NULL CHECK (channel ~ '^[a-z0-9_]{1,64}$'),
    code         text NOT NULL CHECK (code <> '' AND length(code) <= 200),
    external_id  text NOT NULL CHECK (external_id <> '' AND length(external_id) <= 200),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, code)
);
