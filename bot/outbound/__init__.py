"""What the bot sends on its own, outside the reply to a message: the delivery ledger and channel
choice (reminders), the outbox (notes to staff and people) and the media fetcher."""
