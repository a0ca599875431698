"""The words the state decision knows: questions, commands, backchannels, replies, greetings, controls.

All matching is on ``normalise``d text: lower case, letters/digits/apostrophes, single spaces.
"""

from __future__ import annotations

import re

QUESTION_WORDS = frozenset(
    "what whats what's who whos who's whom whose where wheres where's when whens why how hows how's which "
    "is isnt are arent am was were can cant could couldnt would wouldnt will wont shall should shouldnt "
    "do dont does doesnt did didnt may might have has hadnt".split())
IMPERATIVE_VERBS = frozenset(
    "set tell play turn call remind open show give find read stop start add send check search look "
    "put make take switch pause resume skip cancel repeat explain describe translate define spell "
    "calculate convert list name help let lets go navigate book order schedule text email message "
    "increase decrease lower raise mute unmute dim brighten wake note write save delete remove record "
    "count say sing recommend suggest compare summarize summarise keep move change create update "
    "get buy pick choose answer continue try bring use shuffle".split())
FILLERS = frozenset("uh um umm uhm er erm ah ahh oh ooh hm hmm hmmm mm mmm mhm huh eh".split())
# whole-utterance backchannels (normalised: lower case, letters/digits/apostrophes, single spaces)
BACKCHANNELS = frozenset([
    "uh huh", "uhhuh", "uh-huh", "mm hmm", "mmhmm", "mhm", "mm hm", "hmm", "hm", "mm", "mmm", "yeah", "yea",
    "yep", "yup", "yes", "right", "okay", "ok", "o k", "i see", "sure", "got it", "cool", "wow", "oh",
    "ah", "oh okay", "oh ok", "oh i see", "alright", "all right", "exactly", "true", "nice", "great",
    "good", "oh wow", "i know", "that's right", "thats right", "makes sense", "that makes sense",
    "interesting", "really", "oh really", "no way", "oh yeah", "yeah yeah", "right right", "okay okay",
    "uh huh uh huh", "mm hmm mm hmm", "indeed", "fair enough", "gotcha", "i got it", "oh nice", "perfect",
    "awesome", "fine", "thank you", "thanks", "ok thanks", "okay thanks", "okay thank you", "yeah right",
    "right okay", "okay right", "yeah okay", "okay yeah", "uh", "um", "oh right", "ah okay", "ah i see",
    "no", "nope", "yes yes", "sure sure", "of course", "absolutely", "definitely", "totally", "mm okay",
])
# short replies that answer a yes/no question from the assistant
REPLIES = frozenset([
    "yes", "yeah", "yep", "yup", "sure", "okay", "ok", "no", "nope", "yes please", "no thanks",
    "no thank you", "yes thank you", "please", "please do", "go ahead", "of course", "absolutely",
    "definitely", "not now", "not really", "alright", "all right", "sure thing", "do it", "yeah sure",
    "sure go ahead", "yes do", "no don't", "no dont",
])
# Statements that are requests when nobody else is being talked to.
REQUEST_OPENING = re.compile(r"^(i want to|i wanna|i would like|i'd like|id like|i need you to|i need to know|"
                             r"can you|could you|would you|will you|please|help me|let me know|remind me)\b")
# whisper tiny.en often hears "I want to book..." as "I went to book...": "went to" + a request verb counts too
MISHEARD_REQUEST_OPENING = re.compile(r"^i went to (\w+)\b")
# The whole utterance greets nobody by name: "Hello.", "Hi there, how are you?", "Good morning." Said to a
# silent assistant it opens a conversation ("Hey Mike, how's it going?" names someone else: the head decides).
GREETING = re.compile(r"^(?=.)((hi|hello|hey|hiya|howdy|good (morning|afternoon|evening))( there| assistant| again)?)?"
                      r"( ?(how are you( doing)?( today)?|how's it going|hows it going|how are things))?$")

# The controls that ask only for silence: they stop the answer and start no new one (answering "Stop."
# would be talking again; a question said right after it is its own turn).
SILENCE_COMMANDS = frozenset([
    "stop", "stop it", "stop talking", "stop please", "please stop", "pause", "cancel", "be quiet", "quiet",
    "shut up", "never mind", "nevermind", "that's enough", "thats enough", "enough",
])
# one-word/two-word controls that always address the assistant (a barge-in "stop" must never be ignored)
CONTROL_COMMANDS = SILENCE_COMMANDS | frozenset([
    "skip", "next", "louder", "quieter", "volume up", "volume down", "repeat", "repeat that", "say that again",
    "go on", "continue",
])
VOCATIVES = frozenset(
    "honey mom mommy mum dad daddy babe baby sweetie sweetheart darling dear guys kids buddy dude man "
    "bro sis grandma grandpa son kiddo love folks everyone everybody".split())
FIRST_PERSON = frozenset("i i'm im i'll ill i've ive i'd id we we're were we'll my our me".split())


def normalise(text: str) -> str:
    text = text.lower().replace("-", " ").replace("’", "'")
    return " ".join(re.findall(r"[a-z0-9']+", text)).replace(" '", " ").strip("' ")


def asks_for_silence(text: str) -> bool:
    return normalise(text) in SILENCE_COMMANDS


def words_of(text: str) -> list[str]:
    return [w.strip("'") for w in normalise(text).split() if w.strip("'")]


def is_backchannel(text: str) -> bool:
    """The whole utterance is a backchannel or filler ("uh-huh", "yeah, okay", "mm", "I see")."""
    norm = normalise(text)
    if not norm:
        return False
    if norm in BACKCHANNELS:
        return True
    # "yeah, yeah, right" / "oh, okay" : every comma-separated piece is a backchannel
    pieces = [normalise(p) for p in re.split(r"[,.!?;]+", text) if normalise(p)]
    return bool(pieces) and all(p in BACKCHANNELS or all(w in FILLERS for w in p.split()) for p in pieces)


def is_filler_only(text: str) -> bool:
    words = words_of(text)
    return bool(words) and all(w in FILLERS for w in words)


def is_short_reply(text: str) -> bool:
    return normalise(text) in REPLIES


# words that point at something seen (a question about the camera's view)
VISUAL_WORDS = frozenset(
    "this that these those here label sign page text written read say says see look looks looking showing "
    "show holding hold hand camera picture photo image screen colour color wearing".split())
