"""The simulator's subcommands, added to ``vigil`` through the ``vigil.commands`` entry point."""

COMMANDS: dict[str, tuple[str, str]] = {
    "simulate": ("sim.world", "write 30 days of simulated social-network logs"),
    "pipeline": (
        "sim.pipeline",
        "simulate a world and run the whole pipeline (what `make run` calls)",
    ),
    "simulate-notes": (
        "sim.notes",
        "write a Community Notes world (notes, ratings) beside the posts",
    ),
    "simulate-accounts": (
        "sim.accounts",
        "write an accounts world (bots, evaders, campaigns, look-alikes) with suspensions, devices",
    ),
    "simulate-schedule": (
        "sim.scheduling",
        "scheduled posts in a simulated world (people, cron bots, campaigns), published into it",
    ),
    "simulate-discovery": (
        "sim.discovery",
        "a discovery world: topics, events (bursts), follows, impressions, engagement",
    ),
}
