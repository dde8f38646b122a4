"""The use cases: imports, review, exports, delivery, audit. Transactions live here."""
