"""Template grammar for the simulator's post and reply texts.

The grammar is built so that text alone is an imperfect signal: benign posts borrow toxic-looking
words ("this set is sick", "killing it"), some harmful posts avoid every slur (veiled threats,
dog whistles), harmful words are sometimes obfuscated ("1d10t", "k1ll"), and counter-speech quotes
insults. Hate speech targets invented groups with invented slurs, so the corpus carries no real ones.

Every generator takes a ``random.Random`` so the simulator stays deterministic per seed.
"""

from __future__ import annotations

import random

# --- benign topics --------------------------------------------------------------------------

TOPICS: dict[str, dict[str, list[str]]] = {
    "sports": {
        "thing": [
            "the match",
            "that final",
            "the derby",
            "tonight's game",
            "the second half",
            "the penalty shootout",
            "the relay",
            "the title race",
            "the playoffs",
            "the transfer window",
            "our defense",
            "the new coach",
            "that free kick",
            "the marathon",
            "the away game",
        ],
        "adj": [
            "unreal",
            "brilliant",
            "tense",
            "boring",
            "wild",
            "clutch",
            "painful",
            "historic",
            "sloppy",
            "electric",
            "nervy",
            "solid",
        ],
        "tag": ["#matchday", "#football", "#nba", "#cricket", "#f1", "#tennis", "#running", "#ucl"],
    },
    "food": {
        "thing": [
            "this ramen",
            "grandma's lasagna",
            "the new taco place",
            "my sourdough",
            "that curry",
            "homemade pesto",
            "the brunch spot downtown",
            "street food",
            "pumpkin soup",
            "my first croissant",
            "the dumplings",
            "cold brew",
            "this salad",
            "bbq ribs",
            "miso glaze",
        ],
        "adj": [
            "delicious",
            "amazing",
            "too salty",
            "perfect",
            "underrated",
            "overpriced",
            "comforting",
            "spicy",
            "crispy",
            "fresh",
            "rich",
            "so good",
        ],
        "tag": ["#foodie", "#recipe", "#baking", "#brunch", "#homecooking", "#vegan", "#coffee"],
    },
    "music": {
        "thing": [
            "this album",
            "the new single",
            "last night's concert",
            "that bassline",
            "the drop",
            "this playlist",
            "the encore",
            "their new tour",
            "the remix",
            "this chorus",
            "the festival lineup",
            "my vinyl haul",
            "that guitar solo",
            "the acoustic version",
        ],
        "adj": [
            "beautiful",
            "catchy",
            "haunting",
            "loud",
            "mellow",
            "iconic",
            "fresh",
            "overrated",
            "on repeat",
            "emotional",
            "groovy",
            "tight",
        ],
        "tag": ["#nowplaying", "#newmusic", "#concert", "#vinyl", "#jazz", "#hiphop", "#indie"],
    },
    "tech": {
        "thing": [
            "the new phone",
            "my laptop",
            "this framework",
            "the update",
            "the beta",
            "my homelab",
            "the keyboard I built",
            "rust compile times",
            "the outage",
            "this api",
            "the new chip",
            "dark mode",
            "my side project",
            "the code review",
            "the migration",
        ],
        "adj": [
            "fast",
            "buggy",
            "slick",
            "confusing",
            "impressive",
            "clunky",
            "solid",
            "overhyped",
            "elegant",
            "painful",
            "stable",
            "neat",
        ],
        "tag": ["#tech", "#python", "#devlife", "#opensource", "#gadgets", "#ai", "#linux"],
    },
    "pets": {
        "thing": [
            "my cat",
            "our puppy",
            "the new kitten",
            "my dog",
            "the hamster",
            "our parrot",
            "the rescue pup",
            "my old tabby",
            "the goldfish",
            "our corgi",
            "the bunny",
            "my lab",
            "the foster kittens",
        ],
        "adj": [
            "adorable",
            "sleepy",
            "chaotic",
            "fluffy",
            "dramatic",
            "silly",
            "sweet",
            "grumpy",
            "curious",
            "spoiled",
            "tiny",
            "brave",
        ],
        "tag": ["#caturday", "#dogsoftwitter", "#pets", "#adoptdontshop", "#puppy", "#catlife"],
    },
    "travel": {
        "thing": [
            "the train ride",
            "this beach",
            "the old town",
            "our road trip",
            "the hostel",
            "the mountain pass",
            "the night market",
            "the ferry",
            "my layover",
            "the museum",
            "this little village",
            "the hike",
            "the lake",
        ],
        "adj": [
            "stunning",
            "crowded",
            "peaceful",
            "magical",
            "exhausting",
            "cheap",
            "breathtaking",
            "quiet",
            "sunny",
            "rainy",
            "unforgettable",
            "cozy",
        ],
        "tag": ["#travel", "#wanderlust", "#roadtrip", "#hiking", "#backpacking", "#vacation"],
    },
    "movies": {
        "thing": [
            "the sequel",
            "that plot twist",
            "the finale",
            "this series",
            "the trailer",
            "the soundtrack",
            "the director's cut",
            "the new season",
            "that documentary",
            "the casting",
            "the ending",
            "the pilot episode",
        ],
        "adj": [
            "gripping",
            "slow",
            "hilarious",
            "confusing",
            "gorgeous",
            "predictable",
            "bold",
            "cheesy",
            "moving",
            "tense",
            "clever",
            "messy",
        ],
        "tag": ["#movienight", "#netflix", "#cinema", "#tvshow", "#film", "#bingewatch"],
    },
    "gaming": {
        "thing": [
            "this boss fight",
            "the new patch",
            "ranked mode",
            "the speedrun",
            "the dlc",
            "my build",
            "the open world",
            "the co-op campaign",
            "the beta servers",
            "that raid",
            "the indie game I found",
            "the controller",
        ],
        "adj": [
            "hard",
            "fun",
            "broken",
            "addictive",
            "gorgeous",
            "grindy",
            "fair",
            "cheap",
            "balanced",
            "laggy",
            "smooth",
            "epic",
        ],
        "tag": ["#gaming", "#gamer", "#speedrun", "#indiegame", "#esports", "#retrogaming"],
    },
    "fitness": {
        "thing": [
            "leg day",
            "my morning run",
            "the yoga class",
            "this workout",
            "my deadlift",
            "the climbing gym",
            "the 10k",
            "stretching",
            "my swim",
            "the spin class",
            "the new pr",
        ],
        "adj": [
            "brutal",
            "great",
            "tough",
            "relaxing",
            "hard",
            "rewarding",
            "sweaty",
            "slow",
            "strong",
            "steady",
        ],
        "tag": ["#fitness", "#gym", "#running", "#yoga", "#workout", "#climbing"],
    },
    "books": {
        "thing": [
            "this novel",
            "the last chapter",
            "my reading list",
            "the audiobook",
            "that memoir",
            "the book club pick",
            "this poem",
            "the library haul",
            "the sequel",
            "the translation",
        ],
        "adj": [
            "beautiful",
            "dense",
            "gripping",
            "sad",
            "funny",
            "long",
            "wise",
            "dull",
            "lyrical",
            "sharp",
        ],
        "tag": ["#books", "#amreading", "#bookclub", "#booktok", "#poetry"],
    },
    "daily": {
        "thing": [
            "monday",
            "this weather",
            "my commute",
            "the weekend",
            "the rain",
            "my coffee",
            "the new apartment",
            "my garden",
            "this sunset",
            "the power cut",
            "my neighbours' party",
            "laundry day",
            "the traffic",
        ],
        "adj": [
            "long",
            "lovely",
            "weird",
            "grey",
            "calm",
            "busy",
            "nice",
            "annoying",
            "chill",
            "perfect",
        ],
        "tag": ["#mondaymood", "#weekend", "#life", "#sunset", "#gardening"],
    },
}
TOPIC_NAMES = list(TOPICS)

OPENERS = [
    "",
    "",
    "",
    "",
    "honestly ",
    "ok so ",
    "not gonna lie, ",
    "just saying: ",
    "update: ",
    "hot take: ",
    "psa: ",
    "lol ",
    "wow ",
    "finally ",
    "ngl ",
    "quick thought: ",
    "y'all, ",
]
CLOSERS = [
    "",
    "",
    "",
    "",
    "!",
    "!!",
    ".",
    " :)",
    " 🙌",
    " 😍",
    " 😂",
    " lol",
    " haha",
    " tbh",
    " 10/10",
    " fr",
    " ❤️",
    " 🔥",
    " …",
    " imo",
]
BENIGN_TEMPLATES = [
    "{o}{thing} was {adj}{c}",
    "{o}{thing} is {adj}{c}",
    "{o}can't stop thinking about {thing}{c}",
    "{o}{thing}? {adj}. that's it, that's the post{c}",
    "{o}anyone else think {thing} is {adj}{c}",
    "{o}day {n} of {thing} and still {adj}{c}",
    "{o}just tried {thing}, {adj}{c}",
    "{o}{thing} > everything else this week{c}",
    "{o}ranking {thing}: {adj} but not {adj2}{c}",
    "{o}who's up for {thing} this weekend{c}",
    "{o}i have opinions about {thing} and they are {adj}{c}",
    "{o}{thing} hit different today{c}",
    "{o}thread on {thing} 🧵 1/{n}{c}",
    "{o}can we talk about how {adj} {thing} was{c}",
    "{o}my take: {thing} is {adj}, {thing2} is {adj2}{c}",
]
BENIGN_MENTION_TEMPLATES = [
    "@{h} you have to see {thing}{c}",
    "@{h} remember {thing}? {adj}{c}",
    "congrats @{h}! {thing} was {adj}{c}",
    "@{h} thanks for the tip about {thing}{c}",
    "with @{h} at {thing}, {adj}{c}",
    "@{h} we should do {thing} again{c}",
]

# Benign posts that look toxic to a bag of words: slang, hyperbole, self-deprecation, counter-speech.
TOXIC_LOOKING_BENIGN = [
    "this set is sick{c}",
    "the drummer is killing it tonight{c}",
    "absolutely killing it at {thing}{c}",
    "{thing} was insane, i'm dead 😂",
    "that drop is disgusting in the best way{c}",
    "this beat slaps so hard it should be illegal{c}",
    "i murdered that workout{c}",
    "my code is trash today lol",
    "i'm such an idiot, left my keys in the car again",
    "i could kill for a pizza rn",
    "our goalkeeper is a beast{c}",
    "that trick was sick, respect{c}",
    "bombed my exam, whatever, next one",
    "shoot, i forgot {thing} is today",
    "the villain in {thing} is a total psycho, loved it",
    "the killer plot twist in {thing}{c}",
    "stop calling people idiots online, it's not that deep",
    "someone called me a loser today. blocked, moving on",
    "reported that spam account, please do the same",
    "{thing} is a killer deal{c}",
    "my cat is a little monster{c}",
    "this hot sauce will destroy you 🔥",
    "we got crushed in {thing} lol",
    "brb dying of laughter{c}",
    "that performance was savage{c}",
    "hate mondays, love coffee{c}",
    "i hate how good {thing} is{c}",
]

# Mention posts whose harm depends on who writes them to whom: friends banter with the same words
# a harasser uses on a victim in a pile-on. Text alone cannot separate these.
CONTEXT_MENTION = [
    "@{h} lol ok",
    "@{h} ratio",
    "@{h} 🤡",
    "@{h} see you tomorrow 🙂",
    "@{h} we'll talk about this at {place}",
    "@{h} nice post",
    "@{h} you again?",
    "@{h} interesting take",
    "@{h} keep posting, it's great content",
    "@{h} bye",
    "@{h} sure buddy",
    "@{h} 👀",
    "@{h} we're watching",
    "@{h} this you?",
    "@{h} cope",
]
# Friends trash-talking each other: insults, even "kill", between people who like each other.
FRIEND_BANTER = [
    "@{h} you absolute {ins} 😂 love you",
    "@{h} shut up lol, you're the best",
    "@{h} you're such a {ins}, see you at {place}",
    "@{h} i will kill you if you spoil {thing} 😂",
    "@{h} {ins}!! miss you",
    "@{h} you're a {ins} and i mean that with love",
    "@{h} imagine being this {ins} 😂 happy birthday",
    "@{h} i'm going to destroy you at {thing} tonight",
]
# Benign posts about the (invented) groups the hate speech targets, including counter-speech that
# quotes a slur, so group names and even slurs are not harmful-only tokens.
GROUP_BENIGN = [
    "the {grp} festival downtown was {adj}{c}",
    "great documentary about {grp} history{c}",
    "shoutout to the {grp} community volunteers{c}",
    "learning the language of {grp}, it's so hard{c}",
    "calling {grp} '{slur}' is not okay. stop it",
    "someone in my replies called {grp} {slur}. reported.",
    "my neighbours are {grp} and they make the best bread{c}",
    "{grp} food market this weekend, who's in{c}",
]
BENIGN_LINK = [
    "great read {link}",
    "my shop is open! 20% off this week {link}",
    "new video is up {link}",
    "giveaway for my followers! rt to win {link}",
    "FREE stickers for the first 10 people, dm me{c}",
    "wrote a blog post about {thing} {link}",
    "tickets for {thing} are on sale {link}",
    "click here for the recipe {link}",
    "we're hiring! {link}",
]
BENIGN_DOMAINS = [
    "youtu.be/x",
    "myshop.store/p",
    "news.example.com/a",
    "blog.example.org/post",
    "tickets.example.net/e",
    "bit.ly/2",
]

# --- harmful content -------------------------------------------------------------------------

INSULTS = [
    "idiot",
    "loser",
    "moron",
    "clown",
    "pathetic",
    "trash",
    "worthless",
    "stupid",
    "freak",
    "joke",
    "waste of space",
    "nobody",
]
INSULT_OBFUSCATED = {
    "idiot": ["1d10t", "id10t", "i d i o t", "idi0t"],
    "loser": ["l0ser", "lo$er", "l o s e r"],
    "moron": ["m0r0n", "mor0n", "m.o.r.o.n"],
    "clown": ["cl0wn", "🤡"],
    "pathetic": ["path3tic", "p@thetic"],
    "trash": ["tr4sh", "tr@sh"],
    "worthless": ["w0rthless", "worthl3ss"],
    "stupid": ["stup1d", "$tupid", "stoopid"],
    "freak": ["fr3ak", "phreak"],
}
HARASS_TEMPLATES = [
    "@{h} your take on {thing} is {ins}",
    "@{h} {thing} was fine until you showed up, {ins}",
    "@{h} nobody cares about your {thing}, {ins}",
    "@{h} you are a {ins}{c}",
    "@{h} shut up, {ins}",
    "@{h} nobody asked, {ins}{c}",
    "@{h} imagine being this {ins}{c}",
    "@{h} you're such a {ins}, log off",
    "lol @{h} is a {ins}{c}",
    "@{h} every post you make is {ins}",
    "@{h} go cry somewhere else you {ins}",
    "@{h} delete your account, {ins}",
    "can everyone see how {ins} @{h} is{c}",
]
# Veiled harassment: no insult words at all (text models struggle; behavior helps).
VEILED_HARASS = [
    "@{h} everyone knows what you did.",
    "@{h} keep talking. we're all screenshotting",
    "@{h} you really should stay offline for a while",
    "@{h} nice profile pic. would be a shame if people found your address",
    "@{h} still here? thought we told you to leave",
    "@{h} no one will miss you when you're gone from here",
]
# Invented groups and invented slurs: the corpus carries no real ones.
GROUPS = [
    "the vorlans",
    "the kestrin",
    "people from dunmere",
    "the ossarites",
    "the tehvi",
    "those marsh folk",
    "the lowcaste zerrish",
    "the pellin",
]
SLURS = ["grubbers", "skravs", "mudfeet", "droolers", "vexers"]
SLUR_OBFUSCATED = {
    "grubbers": ["grubb3rs", "gr*bbers"],
    "skravs": ["skr4vs", "$kravs"],
    "mudfeet": ["mudf33t", "mud-feet"],
    "droolers": ["dr00lers"],
    "vexers": ["v3xers"],
}
HATE_TEMPLATES = [
    "{grp} are {slur}, all of them{c}",
    "{grp} should not be allowed in this country",
    "never trust {grp}, filthy {slur}{c}",
    "{slur} like {grp} ruin everything",
    "i'm sick of {grp}. {slur}, every one",
    "{grp} are vermin{c}",
    "send {grp} back where they came from",
    "why do we let {slur} vote",
]
VEILED_HATE = [
    "funny how every problem in this town started when {grp} moved in",
    "just asking questions: why are {grp} always the ones causing trouble?",
    "{grp} 'culture' is a joke and we all know it",
]
THREAT_WORDS = ["kill", "hurt", "end", "find", "destroy"]
THREAT_OBFUSCATED = {
    "kill": ["k1ll", "ki11", "k!ll", "kil1"],
    "hurt": ["hurtt", "h*rt"],
    "destroy": ["d3stroy"],
}
THREAT_TEMPLATES = [
    "@{h} i will {tw} you",
    "@{h} i know where you live. i will {tw} you",
    "@{h} watch your back, i'm going to {tw} you",
    "someone should {tw} {grp}{c}",
    "@{h} say that again and i'll {tw} you",
    "i'm going to {tw} every one of {grp}",
    "@{h} you won't be safe at {place} tomorrow",
]
PLACES = ["school", "work", "the gym", "the station", "your house", "the game"]

SPAM_DOMAINS = [
    "bit.ly/3xQz",
    "cheap-follows.biz",
    "win-big.click",
    "crypto-gift.top",
    "freeprizes.vip",
    "tinyurl.com/earnfast",
    "promo-deals.shop",
]
SPAM_TEMPLATES = [
    "earn ${n}00/day from home!!! click {link}",
    "FREE crypto giveaway 🎁 first 100 only {link}",
    "dm me for 10k followers in 24h {link}",
    "you won a gift card! claim now {link}",
    "hot singles near you {link}",
    "limited offer: designer bags 90% off {link}",
    "make money fast no experience needed {link} {link}",
    "i made ${n},000 last week with this trick {link}",
    "💰💰 double your bitcoin today 💰💰 {link}",
    "follow back!! f4f {link}",
]
SPAM_NO_LINK = [
    "dm me for a surprise 😉",
    "check my bio for the deal",
    "follow me and i'll follow back 100%",
    "earn from home, message me",
    "i can get you verified, dm",
]
SPAM_OBFUSCATED = ["fr33 crypt0 giveaway {link}", "e@rn m0ney f@st {link}", "c1ick h3re {link}"]

# --- after the drift day: new vocabulary the pre-drift corpus never contains ----------------
DRIFT_INSULTS = ["npc", "glonk", "brainrotter", "mid-wit", "ratio'd nobody"]
DRIFT_INSULT_OBFUSCATED = {"glonk": ["gl0nk", "g.l.o.n.k"], "brainrotter": ["br41nr0tter"]}
DRIFT_SLURS = ["zorbs", "flenchies", "quibbites"]
DRIFT_SLUR_OBFUSCATED = {"zorbs": ["z0rbs", "zørbs"], "flenchies": ["fl3nchies"]}
DRIFT_THREAT_WORDS = ["unalive", "delete", "erase"]
DRIFT_THREAT_OBFUSCATED = {"unalive": ["un@live", "unal1ve"]}
DRIFT_SPAM_TEMPLATES = [
    "claim your VIGX airdrop now ⚡ {link}",
    "VIGX presale is LIVE, 100x guaranteed {link}",
    "connect wallet to receive free VIGX {link}",
]
DRIFT_SPAM_DOMAINS = ["vigx-drop.io", "vigx-claim.app", "airdrop-vigx.net"]
# Tokens that never appear before the drift day (tests check this).
DRIFT_TOKENS = ["glonk", "brainrotter", "zorbs", "flenchies", "quibbites", "unalive", "vigx"]

# --- replies ---------------------------------------------------------------------------------
NEGATIVE_REPLIES = [
    "gross!",
    "this is disgusting",
    "wtf is wrong with you",
    "reported.",
    "not okay",
    "yikes",
    "delete this",
    "blocked.",
    "seriously?",
    "ew",
    "this is vile",
    "disgusting",
    "how is this allowed",
    "touch grass",
]
VICTIM_REPLIES = [
    "leave me alone",
    "stop harassing me",
    "blocked and reported",
    "please stop",
    "reported.",
    "i don't even know you",
]
POSITIVE_REPLIES = [
    "so true",
    "love this",
    "haha",
    "same!",
    "agreed",
    "this!!",
    "😂😂",
    "great point",
    "congrats!",
    "omg yes",
    "need this",
    "thanks for sharing",
    "facts",
    "lol",
    "wait really?",
    "🔥🔥",
    "can't wait",
    "big mood",
]
NEUTRAL_REPLIES = [
    "hmm not sure",
    "source?",
    "interesting",
    "i disagree tbh",
    "what happened?",
    "first",
    "ok",
    "why though",
    "depends",
    "fair",
]
SPAM_REPLIES = ["check my profile {link}", "dm me {link}", "free followers {link}"]

HANDLE_ADJ = [
    "blue",
    "quiet",
    "lucky",
    "tiny",
    "happy",
    "wild",
    "sunny",
    "rusty",
    "cosmic",
    "silver",
    "brave",
    "sleepy",
    "misty",
    "golden",
    "urban",
    "retro",
    "velvet",
    "neon",
]
HANDLE_NOUN = [
    "fox",
    "otter",
    "river",
    "pixel",
    "maple",
    "comet",
    "falcon",
    "panda",
    "harbor",
    "cactus",
    "tiger",
    "willow",
    "ember",
    "raven",
    "koala",
    "meadow",
    "rocket",
    "biscuit",
]


def handle(adj: int, noun: int, num: int) -> str:
    return f"{HANDLE_ADJ[adj]}_{HANDLE_NOUN[noun]}{num}"


class TextGen:
    """Draws post and reply texts. ``drifted`` switches abusers to the post-drift vocabulary."""

    def __init__(self, rnd: random.Random, drifted: bool = False):
        self.r = rnd
        self.drifted = drifted

    # benign ---------------------------------------------------------------------------------
    def _topic_fill(self, template: str, mention: str | None = None) -> str:
        r = self.r
        topic = TOPICS[r.choice(TOPIC_NAMES)]
        other = TOPICS[r.choice(TOPIC_NAMES)] if r.random() < 0.2 else topic
        text = template.format(
            o=r.choice(OPENERS),
            c=r.choice(CLOSERS),
            thing=r.choice(topic["thing"]),
            adj=r.choice(topic["adj"]),
            thing2=r.choice(other["thing"]),
            adj2=r.choice(other["adj"]),
            n=r.randint(2, 9),
            h=mention or "",
        )
        if r.random() < 0.25:
            text += " " + r.choice(topic["tag"])
        return text

    def benign(self, mention: str | None = None) -> tuple[str, bool]:
        """A benign post; returns (text, toxic_looking)."""
        r = self.r
        if mention is not None:
            x = r.random()
            if x < 0.3:
                return r.choice(CONTEXT_MENTION).format(h=mention, place=r.choice(PLACES)), False
            if x < 0.5:
                topic = TOPICS[r.choice(TOPIC_NAMES)]
                return r.choice(FRIEND_BANTER).format(
                    h=mention,
                    ins=r.choice(INSULTS[:6]),
                    place=r.choice(PLACES),
                    thing=r.choice(topic["thing"]),
                ), True
            return self._topic_fill(r.choice(BENIGN_MENTION_TEMPLATES), mention), False
        x = r.random()
        if x < 0.06:
            return self._topic_fill(r.choice(TOXIC_LOOKING_BENIGN)), True
        if x < 0.09:
            tpl = r.choice(GROUP_BENIGN)
            topic = TOPICS[r.choice(TOPIC_NAMES)]
            return tpl.format(
                grp=r.choice(GROUPS),
                slur=r.choice(SLURS),
                adj=r.choice(topic["adj"]),
                c=r.choice(CLOSERS),
            ), "{slur}" in tpl
        if x < 0.13:
            text = self._topic_fill(r.choice(BENIGN_LINK).replace("{link}", "{h}"), "LINK")
            link = "https://" + r.choice(BENIGN_DOMAINS) + f"/{r.randint(100, 99999)}"
            return text.replace("LINK", link), False
        return self._topic_fill(r.choice(BENIGN_TEMPLATES)), False

    # harmful --------------------------------------------------------------------------------
    def _word(self, plain: list[str], obf: dict[str, list[str]], p_obf: float) -> tuple[str, bool]:
        w = self.r.choice(plain)
        if w in obf and self.r.random() < p_obf:
            return self.r.choice(obf[w]), True
        return w, False

    def _insult(self) -> tuple[str, bool]:
        if self.drifted and self.r.random() < 0.8:
            return self._word(DRIFT_INSULTS, DRIFT_INSULT_OBFUSCATED, 0.4)
        return self._word(INSULTS, INSULT_OBFUSCATED, 0.3)

    def _slur(self) -> tuple[str, bool]:
        if self.drifted and self.r.random() < 0.8:
            return self._word(DRIFT_SLURS, DRIFT_SLUR_OBFUSCATED, 0.4)
        return self._word(SLURS, SLUR_OBFUSCATED, 0.3)

    def _threat(self) -> tuple[str, bool]:
        if self.drifted and self.r.random() < 0.7:
            return self._word(DRIFT_THREAT_WORDS, DRIFT_THREAT_OBFUSCATED, 0.4)
        return self._word(THREAT_WORDS, THREAT_OBFUSCATED, 0.35)

    def harmful(self, types: list[str], mention: str | None) -> tuple[str, bool]:
        """A harmful post of the given types (first = primary); returns (text, obfuscated)."""
        r = self.r
        primary = types[0]
        h = mention or "someone"
        obf = False
        if primary == "spam":
            return self.spam()
        if primary == "harassment":
            x = r.random()
            if x < 0.3 and mention is not None:
                text = r.choice(CONTEXT_MENTION).format(h=h, place=r.choice(PLACES))
            elif x < 0.42:
                text = r.choice(VEILED_HARASS).format(h=h)
            else:
                ins, obf = self._insult()
                topic = TOPICS[r.choice(TOPIC_NAMES)]
                text = r.choice(HARASS_TEMPLATES).format(
                    h=h, ins=ins, c=r.choice(CLOSERS), thing=r.choice(topic["thing"])
                )
        elif primary == "hate":
            grp = r.choice(GROUPS)
            if r.random() < 0.15:
                text = r.choice(VEILED_HATE).format(grp=grp)
            else:
                tpl = r.choice(HATE_TEMPLATES)
                slur = ""
                if "{slur}" in tpl:
                    slur, obf = self._slur()
                text = tpl.format(grp=grp, slur=slur, c=r.choice(CLOSERS))
        else:  # violent_threat
            tpl = r.choice(THREAT_TEMPLATES)
            if mention is None and "{h}" in tpl:
                tpl = "someone should {tw} {grp}{c}"
            tw = ""
            if "{tw}" in tpl:
                tw, obf = self._threat()
            text = tpl.format(
                h=h, tw=tw, grp=r.choice(GROUPS), place=r.choice(PLACES), c=r.choice(CLOSERS)
            )
        for extra in types[1:]:
            if extra == "hate":
                slur, o = self._slur()
                obf |= o
                text += r.choice(
                    [
                        f" typical {slur}",
                        f". you {slur} are all the same",
                        f" go back to {r.choice(GROUPS)}",
                    ]
                )
            elif extra == "violent_threat":
                tw, o = self._threat()
                obf |= o
                text += r.choice(
                    [f". i'll {tw} you", f" and i will {tw} you", f". someone should {tw} you"]
                )
            elif extra == "harassment" and mention is not None and f"@{mention}" not in text:
                ins, o = self._insult()
                obf |= o
                text = f"@{mention} {text} {ins}"
            elif extra == "spam":
                text += " " + self._link()
        return text, obf

    def _link(self) -> str:
        if self.drifted and self.r.random() < 0.3:
            return "https://" + self.r.choice(DRIFT_SPAM_DOMAINS) + f"/{self.r.randint(100, 999)}"
        return "https://" + self.r.choice(SPAM_DOMAINS) + f"/{self.r.randint(1000, 99999)}"

    def spam(self, campaign: bool = False) -> tuple[str, bool]:
        """A spam post; returns (text, obfuscated)."""
        r = self.r
        if campaign:
            link = "https://" + r.choice(DRIFT_SPAM_DOMAINS) + f"/{r.randint(100, 999)}"
            return r.choice(DRIFT_SPAM_TEMPLATES).format(link=link), False
        obf = r.random() < 0.1
        if not obf and r.random() < 0.12:
            return r.choice(SPAM_NO_LINK), False
        text = r.choice(SPAM_OBFUSCATED) if obf else r.choice(SPAM_TEMPLATES)
        while "{link}" in text:
            text = text.replace("{link}", self._link(), 1)
        return text.replace("{n}", str(r.randint(2, 9))), obf

    # replies --------------------------------------------------------------------------------
    def reply(self, kind: str) -> str:
        r = self.r
        if kind == "negative":
            return r.choice(NEGATIVE_REPLIES)
        if kind == "victim":
            return r.choice(VICTIM_REPLIES)
        if kind == "spam":
            return r.choice(SPAM_REPLIES).format(link=self._link())
        if kind == "neutral":
            return r.choice(NEUTRAL_REPLIES)
        return r.choice(POSITIVE_REPLIES) + (r.choice(CLOSERS) if r.random() < 0.2 else "")
