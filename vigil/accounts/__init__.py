"""Account integrity: account features, bots, ban evasion, coordination clusters, review queue."""
