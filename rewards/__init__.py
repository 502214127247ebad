"""Campaigns, lottery, red packets, cards, referral, store rewards, risk (built in later issues)."""
