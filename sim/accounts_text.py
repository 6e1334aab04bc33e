"""Units and words of the accounts world (sim/accounts.py): headlines, campaign slogans, domains."""

MIN = 60_000
HOUR = 3_600_000
DAY = 86_400_000
ACTS = ("post", "reply", "like", "view", "follow", "unfollow")
HEADLINES = [
    "markets open higher as {thing} rallies",
    "city council votes on {thing}",
    "weather alert: {adj} storms expected",
    "new study on {thing} released",
    "live updates: {thing} announcement",
    "explainer: why {thing} matters",
    "sports roundup: {thing} and more",
    "opinion: {thing} is {adj}",
]
SLOGANS = [
    (
        "vote yes on measure {n} {link}",
        "measure {n} needs your yes vote {link}",
        "say yes to measure {n} today {link}",
    ),
    (
        "boycott brandco now {link}",
        "brandco must be boycotted {link}",
        "stop buying brandco {link}",
    ),
    (
        "the truth about the dam they hide {link}",
        "what they hide about the dam {link}",
        "the dam truth is out {link}",
    ),
    (
        "support the new stadium deal {link}",
        "the stadium deal is good for us {link}",
        "back the stadium deal {link}",
    ),
    (
        "share before they delete this {link}",
        "they will delete this, share it {link}",
        "share this before it is deleted {link}",
    ),
]
CAMPAIGN_DOMAINS = ["civic-voice.org", "truth-now.info", "realstory.news", "peoplesvote.net"]
BOT_EXTRA = ["", "", "!!", " 🔥", " 💯", " ✅", " #ad", " !!!"]
